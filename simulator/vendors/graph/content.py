"""Graph content: inbox rules, Outlook mail, Teams chats and channels, OneDrive items and sharing."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response
from simulator.odata import evaluate
from simulator.server import ApiError
from simulator.tenant import Person
from simulator.timestamps import DAY, SECOND, graph_time

if TYPE_CHECKING:
    pass
from simulator.vendors.graph.base import MIME, GraphBase


class Content(GraphBase):
    def rule_object(self, rule: Any) -> dict[str, Any]:
        return {
            "id": rule.id,
            "displayName": rule.name,
            "sequence": rule.sequence,
            "isEnabled": rule.enabled,
            "hasError": False,
            "isReadOnly": False,
            "conditions": rule.conditions,
            "actions": rule.actions,
            "exceptions": {},
        }

    def inbox_rules(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        rules = [self.rule_object(r) for r in self.state.inbox_rules(person)]
        return self.listing(request, f"users('{person.entra_id}')/mailFolders('inbox')/messageRules", rules)

    def delete_inbox_rule(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        rule_id = request.params["rule"]
        if not any(r.id == rule_id for r in self.state.inbox_rules(person)):
            raise ApiError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        with self.state.lock:
            self.state.inbox_rules_removed.add(rule_id)
        self.world.store.add_dynamic(
            "m365:unified_audit",
            self.sim.now(),
            "Remove-InboxRule",
            person,
            {
                "parameters": [{"Name": "Identity", "Value": rule_id}],
                "object_id": f"{person.email}\\{rule_id}",
                "app_id": self.sim.credentials.client_id,
            },
        )
        self.change(request, "remove_inbox_rule", {"user": person.email, "rule_id": rule_id}, person=person)
        return Response.empty(204)

    def create_inbox_rule(self, request: Request) -> Response:
        """POST messageRules: a new rule (remediation rollback re-creates a removed one this way)."""
        from simulator.state import InboxRule

        person = self.person(request.params["user"])
        body = request.json()
        if not body.get("displayName"):
            raise ApiError(400, "ErrorInvalidRequest", "displayName is required.")
        with self.state.lock:
            count = sum(len(v) for v in self.state.inbox_rules_added.values())
            rule = InboxRule(
                self.tenant.ids.token("rule-created", person.index, count, length=22) + "AQ==",
                str(body["displayName"]),
                int(body.get("sequence") or 1),
                bool(body.get("isEnabled", True)),
                dict(body.get("conditions") or {}),
                dict(body.get("actions") or {}),
                self.sim.now(),
            )
            self.state.inbox_rules_added.setdefault(person.index, []).append(rule)
        self.world.store.add_dynamic(
            "m365:unified_audit",
            self.sim.now(),
            "New-InboxRule",
            person,
            {
                "parameters": [{"Name": "Name", "Value": rule.name}],
                "object_id": f"{person.email}\\{rule.id}",
                "app_id": self.sim.credentials.client_id,
            },
        )
        self.change(request, "create_inbox_rule", {"user": person.email, "rule_id": rule.id}, 201, person)
        return self.entity(
            request,
            f"users('{request.params['user']}')/mailFolders('{request.params['folder']}')/messageRules",
            self.rule_object(rule),
            201,
        )

    def message_object(self, message: Any) -> dict[str, Any]:
        sender = message.sender_email
        name = message.sender.name if isinstance(message.sender, Person) else sender
        return {
            "id": message.id,
            "createdDateTime": graph_time(message.ts),
            "lastModifiedDateTime": graph_time(message.ts),
            "receivedDateTime": graph_time(message.ts),
            "sentDateTime": graph_time(message.ts - 2 * SECOND),
            "hasAttachments": False,
            "internetMessageId": f"<{self.tenant.ids.hex('imid', message.id, length=24)}@{sender.split('@')[-1]}>",
            "subject": message.subject,
            "bodyPreview": message.text[:255],
            "importance": "normal",
            "conversationId": message.thread,
            "isRead": True,
            "isDraft": False,
            "body": {"contentType": "text", "content": message.text},
            "from": {"emailAddress": {"name": name, "address": sender}},
            "sender": {"emailAddress": {"name": name, "address": sender}},
            "toRecipients": [
                {
                    "emailAddress": {
                        "name": r.name if isinstance(r, Person) else r,
                        "address": r.email if isinstance(r, Person) else r,
                    }
                }
                for r in message.recipients
            ],
        }

    def messages(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        start, end, node = self._time_range(request, "receivedDateTime")
        items = [
            self.message_object(m) for m in self.world.conversations.mailbox("m365:mail", person, start, end)
        ]
        items.reverse()
        if node is not None:
            items = [i for i in items if evaluate(node, i)]
        return self._offset_page(request, items, f"users('{person.entra_id}')/messages", 10)

    def chat_object(self, message: Any, chat_id: str | None = None, channel: Any = None) -> dict[str, Any]:
        sender = message.sender
        body: dict[str, Any] = {
            "id": message.id,
            "replyToId": message.thread,
            "etag": str(message.ts // 1000),
            "messageType": "message",
            "createdDateTime": graph_time(message.ts),
            "lastModifiedDateTime": graph_time(message.ts),
            "lastEditedDateTime": None,
            "deletedDateTime": None,
            "subject": None,
            "summary": None,
            "chatId": chat_id,
            "importance": "normal",
            "locale": "en-us",
            "webUrl": None,
            "channelIdentity": {"teamId": channel.team_id, "channelId": channel.id} if channel else None,
            "from": {
                "application": None,
                "device": None,
                "user": {
                    "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                    "id": sender.entra_id,
                    "displayName": sender.name,
                    "userIdentityType": "aadUser",
                    "tenantId": self.tenant.tenant_id,
                },
            }
            if isinstance(sender, Person)
            else None,
            "body": {"contentType": "text", "content": message.text},
            "attachments": [],
            "mentions": [],
            "reactions": [],
        }
        return body

    def chat_messages(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        start, end, node = self._time_range(request, "lastModifiedDateTime")
        conversations = self.world.conversations
        messages = [
            m
            for m in conversations.story + conversations.added
            if m.stream == "m365:teams_messages"
            and m.container.endswith("@unq.gbl.spaces")
            and person in m.recipients
            and start <= m.ts < end
        ]
        items = [self.chat_object(m, chat_id=m.container) for m in sorted(messages, key=lambda m: m.ts)]
        if node is not None:
            items = [i for i in items if evaluate(node, i)]
        return self._offset_page(request, items, "chatMessages", 50)

    def teams(self, request: Request) -> Response:
        channels = self.world.conversations.teams_channels
        items = [{"id": c.team_id, "displayName": c.team_name, "description": None} for c in channels]
        return self.listing(request, "teams", items)

    def team_channels(self, request: Request) -> Response:
        channels = [c for c in self.world.conversations.teams_channels if c.team_id == request.params["team"]]
        if not channels:
            raise ApiError(404, "NotFound", f"No team found with Group Id {request.params['team']}")
        return self.listing(
            request,
            "channels",
            [{"id": c.id, "displayName": c.name, "membershipType": "standard"} for c in channels],
        )

    def _channel(self, request: Request) -> Any:
        channel = next(
            (
                c
                for c in self.world.conversations.teams_channels
                if c.team_id == request.params["team"] and c.id == request.params["channel"]
            ),
            None,
        )
        if channel is None:
            raise ApiError(404, "NotFound", "Channel not found")
        return channel

    def channel_messages(self, request: Request) -> Response:
        channel = self._channel(request)
        start, end, node = self._time_range(request, "lastModifiedDateTime")
        messages = self.world.conversations.channel_messages("m365:teams_messages", channel.id, start, end)
        items = [self.chat_object(m, channel=channel) for m in reversed(messages) if m.thread is None]
        if node is not None:
            items = [i for i in items if evaluate(node, i)]
        return self._offset_page(request, items, "chatMessages", 20)

    def channel_replies(self, request: Request) -> Response:
        channel = self._channel(request)
        messages = self.world.conversations.channel_messages("m365:teams_messages", channel.id, 0, 1 << 62)
        items = [
            self.chat_object(m, channel=channel) for m in messages if m.thread == request.params["message"]
        ]
        return self._offset_page(request, items, "chatMessages", 20)

    def drive_object(self, person: Person) -> dict[str, Any]:
        return {
            "id": self.tenant.drive_id(person.index),
            "driveType": "business",
            "name": "OneDrive",
            "owner": {"user": {"id": person.entra_id, "displayName": person.name, "email": person.email}},
            "webUrl": f"https://{self.tenant.domain.split('.')[0]}-my.sharepoint.com/personal/{person.email.replace('@', '_').replace('.', '_')}/Documents",
        }

    def item_object(self, drive_file: Any) -> dict[str, Any]:
        owner = self.tenant.people[drive_file.owner]
        perms = self.state.permissions("m365", drive_file.id)
        scope = (
            "anonymous"
            if any(p.type == "anyone" for p in perms)
            else "organization"
            if any(p.type == "domain" for p in perms)
            else ("users" if len(perms) > 1 else None)
        )
        body = {
            "id": drive_file.id,
            "name": drive_file.name,
            "size": drive_file.size,
            "createdDateTime": graph_time(drive_file.created),
            "lastModifiedDateTime": graph_time(drive_file.created + DAY),
            "webUrl": f"{self.drive_object(owner)['webUrl']}/{urllib.parse.quote(drive_file.name)}",
            "file": {"mimeType": MIME.get(drive_file.extension, "application/octet-stream")},
            "parentReference": {
                "driveId": self.tenant.drive_id(owner.index),
                "driveType": "business",
                "path": "/drive/root:",
            },
            "createdBy": {"user": {"id": owner.entra_id, "displayName": owner.name, "email": owner.email}},
        }
        if scope:
            body["shared"] = {
                "scope": scope,
                "owner": {"user": {"id": owner.entra_id, "displayName": owner.name}},
            }
        return body

    def permission_object(self, permission: Any, drive_file: Any) -> dict[str, Any]:
        roles = {"owner": ["owner"], "writer": ["write"], "reader": ["read"]}[permission.role]
        if permission.type == "anyone":
            return {
                "id": permission.id,
                "roles": roles,
                "shareId": f"u!{permission.id}",
                "hasPassword": False,
                "link": {
                    "type": "view",
                    "scope": "anonymous",
                    "preventsDownload": False,
                    "webUrl": f"https://{self.tenant.domain.split('.')[0]}-my.sharepoint.com/:w:/g/personal/{permission.id}",
                },
            }
        if permission.type == "domain":
            return {
                "id": permission.id,
                "roles": roles,
                "shareId": f"s!{permission.id}",
                "link": {
                    "type": "view",
                    "scope": "organization",
                    "webUrl": f"https://{self.tenant.domain.split('.')[0]}-my.sharepoint.com/:w:/g/org/{permission.id}",
                },
            }
        person = self.tenant.person(permission.email)
        if person is not None:
            identity = {"id": person.entra_id, "displayName": person.name, "email": person.email}
            return {
                "id": permission.id,
                "roles": roles,
                "grantedTo": {"user": identity},
                "grantedToV2": {"user": identity},
            }
        return {
            "id": permission.id,
            "roles": roles,
            "invitation": {"email": permission.email, "signInRequired": True},
            "grantedToIdentitiesV2": [{"user": {"displayName": permission.email, "email": permission.email}}],
            "grantedToIdentities": [{"user": {"displayName": permission.email, "email": permission.email}}],
        }

    def _drive_owner(self, drive_id: str) -> Person:
        owner = self.tenant.owner_of_drive(drive_id)
        if owner is None:
            raise ApiError(404, "itemNotFound", f"The drive '{drive_id}' could not be found.")
        return owner

    def _item(self, drive_id: str | None, item_id: str, owner: Person | None = None) -> Any:
        drive_file = self.tenant.file("m365", item_id)
        if owner is None and drive_id is not None:
            owner = self._drive_owner(drive_id)
        if drive_file is None or (owner is not None and drive_file.owner != owner.index):
            raise ApiError(404, "itemNotFound", "The resource could not be found.")
        return drive_file

    def user_drive(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        return self.entity(request, f"users('{person.entra_id}')/drive", self.drive_object(person))

    def user_drive_children(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        items = [self.item_object(f) for f in self.tenant.files_of(person.index, "m365")]
        return self._offset_page(request, items, "drives/items", 200)

    def drive_children(self, request: Request) -> Response:
        owner = self._drive_owner(request.params["drive"])
        items = [self.item_object(f) for f in self.tenant.files_of(owner.index, "m365")]
        return self._offset_page(request, items, "drives/items", 200)

    def drive_item(self, request: Request) -> Response:
        item = self._item(request.params["drive"], request.params["item"])
        return self.entity(request, f"drives('{request.params['drive']}')/items", self.item_object(item))

    def item_permissions(self, request: Request) -> Response:
        drive_file = self._item(request.params["drive"], request.params["item"])
        perms = [self.permission_object(p, drive_file) for p in self.state.permissions("m365", drive_file.id)]
        return self.listing(request, "permissions", perms)

    def user_item_permissions(self, request: Request) -> Response:
        person = self.person(request.params["user"])
        drive_file = self._item(None, request.params["item"], person)
        perms = [self.permission_object(p, drive_file) for p in self.state.permissions("m365", drive_file.id)]
        return self.listing(request, "permissions", perms)

    def delete_permission(self, request: Request) -> Response:
        drive_file = self._item(request.params["drive"], request.params["item"])
        permission_id = request.params["permission"]
        perms = self.state.permissions("m365", drive_file.id)
        found = next((p for p in perms if p.id == permission_id), None)
        if found is None:
            raise ApiError(404, "itemNotFound", "The permission could not be found.")
        if found.role == "owner":
            raise ApiError(403, "accessDenied", "The owner's permission cannot be removed.")
        with self.state.lock:
            self.state.removed_permissions.add((drive_file.id, permission_id))
        owner = self.tenant.people[drive_file.owner]
        self.world.store.add_dynamic(
            "m365:unified_audit",
            self.sim.now(),
            "SharingRevoked",
            owner,
            {
                "ObjectId": drive_file.name,
                "Workload": "OneDrive",
                "RecordType": 14,
                "SourceFileName": drive_file.name,
                "TargetUserOrGroupName": found.email or found.type,
                "AppId": self.sim.credentials.client_id,
            },
        )
        self.change(
            request,
            "remove_sharing_link",
            {
                "drive_id": request.params["drive"],
                "file_id": drive_file.id,
                "permission_id": permission_id,
                "type": found.type,
            },
            person=owner,
        )
        return Response.empty(204)
