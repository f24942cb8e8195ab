"""A local, faithful stand-in for Microsoft Graph/Entra/O365, Google Workspace and Slack APIs, seeded
from scenario files (benign background activity plus attack stories with ground truth).

It imports nothing from the rest of tenantguard: the official clients (msal,
google-api-python-client, slack_sdk) talk to it over real HTTP exactly as they would talk to the
vendors. Start one in-process with :func:`simulator.handle.start` or from the command line with
``python -m simulator serve --scenario NAME``. See simulator/README.md.
"""
