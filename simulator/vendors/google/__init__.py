"""Google Workspace: OAuth JWT-bearer token endpoint, Admin SDK Reports and Directory, Drive v3,
Gmail and Cloud Identity policies (the settings reads).

Reports lists newest first, pages with `nextPageToken`, and hides events younger than the
application's reporting lag (scenario `lag:`). Admin SDK calls need a token whose subject is an
admin; Gmail calls need the mailbox owner as subject (domain-wide delegation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.vendors.google.directory import Directory
from simulator.vendors.google.drive import Drive
from simulator.vendors.google.gmail import Gmail
from simulator.vendors.google.policies import Policies
from simulator.vendors.google.reports import Reports

if TYPE_CHECKING:
    from simulator.server import Simulator


class GoogleApi(Reports, Directory, Drive, Gmail, Policies):
    """All Google handlers."""


def register(sim: Simulator) -> None:
    api = GoogleApi(sim)
    add = sim.router.add
    add("POST", r"/google/token", api.token, "google", "token_endpoint")
    d = r"/admin/directory/v1"
    routes = [
        (
            "GET",
            r"/admin/reports/v1/activity/users/(?P<user>[^/]+)/applications/(?P<app>[^/]+)",
            api.activities,
            "reports",
        ),
        ("GET", d + r"/users", api.users, "users"),
        ("GET", d + r"/users/(?P<user>[^/]+)", api.user, "users"),
        ("PUT PATCH", d + r"/users/(?P<user>[^/]+)", api.update_user, "users"),
        ("POST", d + r"/users/(?P<user>[^/]+)/signOut", api.sign_out, "users"),
        ("GET", d + r"/users/(?P<user>[^/]+)/tokens", api.tokens, "tokens"),
        ("DELETE", d + r"/users/(?P<user>[^/]+)/tokens/(?P<client>[^/]+)", api.delete_token, "tokens"),
        ("GET", d + r"/customer/(?P<customer>[^/]+)/roles", api.roles, "roles"),
        ("GET", d + r"/customer/(?P<customer>[^/]+)/roleassignments", api.role_assignments, "roles"),
        (
            "DELETE",
            d + r"/customer/(?P<customer>[^/]+)/roleassignments/(?P<assignment>[^/]+)",
            api.delete_role_assignment,
            "roles",
        ),
        ("GET", d + r"/groups", api.groups, "groups"),
        ("GET", r"/drive/v3/files", api.files, "drive_files"),
        ("GET", r"/drive/v3/files/(?P<file>[^/]+)", api.file, "drive_files"),
        ("GET", r"/drive/v3/files/(?P<file>[^/]+)/permissions", api.permissions, "drive_permissions"),
        ("POST", r"/drive/v3/files/(?P<file>[^/]+)/permissions", api.create_permission, "drive_permissions"),
        (
            "DELETE",
            r"/drive/v3/files/(?P<file>[^/]+)/permissions/(?P<permission>[^/]+)",
            api.delete_permission,
            "drive_permissions",
        ),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/threads", api.threads, "gmail"),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/threads/(?P<thread>[^/]+)", api.thread, "gmail"),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/messages", api.gmail_messages, "gmail"),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/messages/(?P<message>[^/]+)", api.gmail_message, "gmail"),
        ("GET", r"/v1/policies", api.policies, "policies"),
        ("GET", r"/v1/policies/(?P<policy>[^/]+)", api.policy, "policies"),
        ("PATCH", r"/v1/policies/(?P<policy>[^/]+)", api.patch_policy, "policies"),
    ]
    for method, path, handler, resource in routes:
        add(method, path, handler, "google", resource, "google")
