"""Drive v3: files (owned, or the whole domain for admins) and their permissions."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response
from simulator.server import ApiError
from simulator.timestamps import DAY, google_time
from simulator.vendors.paging import encode_cursor

if TYPE_CHECKING:
    pass
from simulator.vendors.google.base import GoogleBase, drive_visibility
from simulator.vendors.google.fields import apply_fields, parse_fields


class Drive(GoogleBase):
    def file_object(self, drive_file: Any) -> dict[str, Any]:
        from simulator.tenant import google_mime

        owner = self.tenant.people[drive_file.owner]
        perms = self.state.permissions("google", drive_file.id)
        return {
            "kind": "drive#file",
            "id": drive_file.id,
            "name": drive_file.title,
            "mimeType": google_mime(drive_file.extension),
            "createdTime": google_time(drive_file.created),
            "modifiedTime": google_time(drive_file.created + DAY),
            "owners": [
                {"kind": "drive#user", "displayName": owner.name, "emailAddress": owner.email, "me": False}
            ],
            "shared": len(perms) > 1,
            "size": str(drive_file.size),
            "webViewLink": f"https://docs.google.com/document/d/{drive_file.id}/edit?usp=drivesdk",
            "permissionIds": [p.id for p in perms],
        }

    def selected(self, request: Request, body: dict[str, Any], default: str) -> dict[str, Any]:
        """Drive answers the `fields` asked for, or its short default set (kind, id, name, mimeType)."""
        fields = request.arg("fields")
        return apply_fields(body, parse_fields(fields or default))

    def with_permissions(self, request: Request, item: dict[str, Any], drive_file: Any) -> dict[str, Any]:
        """`permissions` is only built when the fields ask for it (it costs a lookup per file)."""
        if "permissions" in (request.arg("fields") or "") or (request.arg("fields") or "").strip() == "*":
            item["permissions"] = [
                self.permission_object(p) for p in self.state.permissions("google", drive_file.id)
            ]
        return item

    def files(self, request: Request) -> Response:
        subject = self.need(request, "drive")
        corpora = request.arg("corpora") or "user"
        q = request.arg("q") or ""
        owners = (
            [p for p in self._people()]
            if corpora in ("domain", "allDrives") and subject is not None and self._is_admin(subject)
            else ([subject] if subject is not None else [])
        )
        owner_match = re.search(r"'([^']+)'\s+in\s+owners", q)
        if owner_match:
            key = owner_match.group(1)
            owner = subject if key == "me" else self.tenant.person(key)
            owners = [owner] if owner is not None and owner in owners + ([subject] if subject else []) else []
        files = [f for p in owners for f in self.tenant.files_of(p.index, "google")]
        visibility = re.search(r"visibility\s*=\s*'(\w+)'", q)
        if visibility:
            files = [
                f
                for f in files
                if drive_visibility(self.state.permissions("google", f.id)) == visibility.group(1)
            ]
        size = self.size(request, "pageSize", 100, 1000)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": [
                self.with_permissions(request, self.file_object(f), f) for f in files[offset : offset + size]
            ],
        }
        if offset + size < len(files):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(
            self.selected(request, body, "kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType)")
        )

    def _file(self, request: Request) -> Any:
        drive_file = self.tenant.file("google", request.params["file"])
        if drive_file is None:
            raise ApiError(404, "notFound", f"File not found: {request.params['file']}.")
        return drive_file

    def file(self, request: Request) -> Response:
        self.need(request, "drive")
        drive_file = self._file(request)
        item = self.with_permissions(request, self.file_object(drive_file), drive_file)
        return Response.json(self.selected(request, item, "kind,id,name,mimeType"))

    def permission_object(self, permission: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "drive#permission",
            "id": permission.id,
            "type": permission.type,
            "role": permission.role,
            "deleted": False,
            "pendingOwner": False,
        }
        if permission.type in ("user", "group"):
            person = self.tenant.person(permission.email)
            body.update(
                {
                    "emailAddress": permission.email,
                    "displayName": person.name if person else permission.email.split("@")[0],
                }
            )
        elif permission.type == "domain":
            body.update(
                {
                    "domain": permission.domain,
                    "displayName": permission.domain,
                    "allowFileDiscovery": permission.discoverable,
                }
            )
        else:
            body["allowFileDiscovery"] = permission.discoverable
        return body

    def permissions(self, request: Request) -> Response:
        self.need(request, "drive")
        drive_file = self._file(request)
        body = {
            "kind": "drive#permissionList",
            "permissions": [
                self.permission_object(p) for p in self.state.permissions("google", drive_file.id)
            ],
        }
        fields = request.arg("fields")
        return Response.json(apply_fields(body, parse_fields(fields)) if fields else body)

    def create_permission(self, request: Request) -> Response:
        """permissions.create: share a file (remediation rollback restores a removed share this way)."""
        from simulator.tenant import Permission

        self.need(request, "drive_write")
        drive_file = self._file(request)
        body = request.json()
        kind, role = body.get("type"), body.get("role")
        if kind not in ("user", "group", "domain", "anyone") or role not in ("reader", "commenter", "writer"):
            raise ApiError(400, "invalid", "Invalid permission: type and role are required.")
        if kind in ("user", "group") and not body.get("emailAddress"):
            raise ApiError(400, "invalid", "An emailAddress is required for user and group permissions.")
        with self.state.lock:
            added = self.state.added_permissions.setdefault(drive_file.id, [])
            permission = Permission(
                "anyoneWithLink"
                if kind == "anyone"
                else str(self.tenant.ids.number("perm-created", drive_file.id, len(added))),
                kind,
                "reader" if role == "commenter" else role,
                email=str(body.get("emailAddress") or ""),
                domain=str(body.get("domain") or ""),
                discoverable=bool(body.get("allowFileDiscovery", False)),
            )
            self.state.removed_permissions.discard((drive_file.id, permission.id))
            added.append(permission)
        self.change(
            request,
            "create_permission",
            {"file_id": drive_file.id, "permission_id": permission.id, "type": kind, "role": role},
            200,
            self.tenant.people[drive_file.owner],
        )
        return Response.json(self.permission_object(permission))

    def delete_permission(self, request: Request) -> Response:
        subject = self.need(request, "drive_write")
        drive_file = self._file(request)
        permission_id = request.params["permission"]
        found = next(
            (p for p in self.state.permissions("google", drive_file.id) if p.id == permission_id), None
        )
        if found is None:
            raise ApiError(404, "notFound", f"Permission not found: {permission_id}.")
        if found.role == "owner":
            raise ApiError(403, "cannotRemoveOwner", "The owner of a file cannot be removed.")
        with self.state.lock:
            self.state.removed_permissions.add((drive_file.id, permission_id))
        owner = self.tenant.people[drive_file.owner]
        from simulator.render.google import activity_extra

        actor = subject or owner
        self.world.store.add_dynamic(
            "google:drive",
            self.sim.now(),
            "activity",
            actor,
            activity_extra(
                actor,
                None,
                [
                    (
                        "acl_change",
                        "change_document_visibility" if found.type == "anyone" else "change_user_access",
                        {
                            "doc_id": drive_file.id,
                            "doc_title": drive_file.title,
                            "owner": owner.email,
                            "visibility": "private",
                            "old_value": ["can_view"],
                            "new_value": ["none"],
                            "primary_event": True,
                        },
                    )
                ],
            ),
        )
        self.change(
            request,
            "remove_drive_permission",
            {
                "file_id": drive_file.id,
                "permission_id": permission_id,
                "type": found.type,
                "owner": owner.email,
            },
            person=owner,
        )
        return Response.empty(204)
