"""The web console: server-rendered pages for analysts, approvers, compliance officers and managers, on the API's service functions, roles and audit chain."""
