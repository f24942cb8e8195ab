"""Names the dead-code check (`make lint`, vulture) must not report: the configuration is
[tool.vulture] in pyproject.toml. Routes, typer commands, pydantic validators, pytest fixtures and
simulator story actions are recognised there by their decorators; what is listed here is used by
name by a framework or a library, stored/serialised as data, or looked up by value.

Add a name only with the reason it is not dead; never to silence a finding about our own code.
"""

# ruff: noqa: B018, F821
# (a whitelist is a list of bare names and attributes; `_` stands for any object)

# --- frameworks and libraries call these by name
_.model_config  # pydantic / pydantic-settings model configuration
_.impl  # SQLAlchemy TypeDecorator
_.cache_ok  # SQLAlchemy TypeDecorator
_.process_bind_param  # SQLAlchemy TypeDecorator
_.process_result_value  # SQLAlchemy TypeDecorator
_.isolation_level  # sqlite3 connection attribute (core/db.py issues BEGIN itself)
_.trust_env  # requests / httpx: ignore proxy and CA environment variables
_.sleep_for_retry  # urllib3 Retry override (providers/http.py)
_.prepare_for_next_attempt  # slack_sdk RetryHandler override
_._can_retry  # slack_sdk RetryHandler override
_.next_attempt_requested  # slack_sdk RetryState field
_.log_errors  # re2.Options
_.never_capture  # re2.Options
_.max_mem  # re2.Options
_.daemon_threads  # socketserver.ThreadingMixIn
_.allow_reuse_address  # socketserver.TCPServer
_.request_queue_size  # socketserver.TCPServer
_.protocol_version  # http.server.BaseHTTPRequestHandler
_.apply_value  # pySigma ValueTransformation override (detectors/sigma/pipelines.py)
_.disable_nagle_algorithm  # socketserver.StreamRequestHandler
_.close_connection  # http.server.BaseHTTPRequestHandler
_.log_message  # http.server.BaseHTTPRequestHandler
_.do_GET  # http.server.BaseHTTPRequestHandler
_.do_HEAD
_.do_POST
_.do_PUT
_.do_PATCH
_.do_DELETE
_.handle_DATA  # aiosmtpd handler (simulator/mail.py)
_.should_exit  # uvicorn.Server: stop serving (tests/oncall)
pytest_plugins  # pytest
pytestmark  # pytest
pytest_addoption  # pytest hooks (tests/conftest.py)
pytest_configure
pytest_collection_modifyitems
pytest_report_header

# --- stored columns and API response fields: read by serialisation, not by name
_.received_at  # core.models.event.Event
_.last_location  # core.models.anomaly.PersonBaseline (a summary row; engines re-learn from events)
_.external_id  # core.models.identity
_.updated_by  # core.models.oncall
_.provider_ref  # core.models.oncall (provider's message id of a page)
_.failing_object_ids  # core.models.posture, api/posture/schemas.py
_.weight_passed  # core.models.posture.PostureScore
_.weight_total  # core.models.posture.PostureScore
_.disabled_at  # core.models.principal, api/principals/schemas.py
_.rolled_back_at  # core.models.remediation
_.schema_current  # api/health/router.py response
_.findings_total  # api/incidents/schemas.py response
_.joined_incidents  # api/incidents/digests.py response
_.controls_mapped  # api/compliance/schemas.py FrameworkOut response
_.posture_checks  # api/compliance/schemas.py ControlOut response
_.detection_rules  # api/compliance/schemas.py ControlOut response
_.response_type  # Slack interaction response body (api/actions/schemas.py)
_.replace_original  # Slack interaction response body
_.model_trained  # detectors/anomaly/service.py run report
_.slack_scopes  # simulator/catalog.py app catalogue data
_.country_name  # simulator scenario templates: {attacker.country_name}
_.controls_mapped  # api/compliance/schemas.py response
_.posture_checks  # api/compliance/schemas.py response
_.detection_rules  # api/compliance/schemas.py response

# --- enum members looked up by value (stored strings, YAML, f-strings)
_.IPS  # EntityKind: keys of the stored entities JSON, read by value
_.FILES  # EntityKind
_.APPS  # EntityKind
_.ACCOUNTS  # EntityKind
_.INCIDENT_NOTIFIED_ANNOUNCE  # core.audit.AuditAction(f"incident.notified.{action}")
_.INCIDENT_NOTIFIED_UPDATE
_.REMEDIATION_APPROVAL_RECORDED  # core.audit.AuditAction(f"remediation.{event}")
_.REMEDIATION_AUTO_APPROVED
_.REMEDIATION_EXECUTION_STARTED
_.REMEDIATION_FAILED
_.REMEDIATION_NOT_RUN
_.REMEDIATION_PROPOSED
_.REMEDIATION_REJECTED
_.REMEDIATION_REPLANNED
_.REMEDIATION_ROLLBACK_FAILED
_.REMEDIATION_ROLLED_BACK
_.REMEDIATION_STOPPED
_.REMEDIATION_SUCCEEDED
_.AUTHENTICATION  # detectors/posture/checks.py Category (check files name it)
_.PRIVILEGED_ACCESS
_.DATA_SHARING
_.EXTERNAL_ACCESS
_.LOGGING
_.SESSIONS
_.MON  # oncall/spec.py weekdays (schedules name them)
_.TUE
_.WED
_.THU
_.FRI
_.SAT
_.SUN
_.ERADICATE  # remediation/catalogue phase (playbooks name it)
_.RESPONDERS  # response/updates.py Audience (API requests name it by value)
_.EXECUTIVES
_.IDENTIFIED  # response/updates.py PublicState (API requests name it by value)
_.MONITORING
_.jira_error  # core/models/response.py: stored, served by GET /response/incidents/{id}
_.started_by  # core/models/response.py Drill: stored, served by GET /response/drills
_.__getattr__  # cli.main: module attribute hook (`from cli.main import app`)
_.deserialize  # providers/google.py OrjsonModel: googleapiclient's JsonModel hook
_.timer_func  # bench/timeline_grouping.py: pyinstrument's stack sampler reads it (profiles in CPU time)
_.pytest_xdist_make_scheduler  # tests/conftest.py: pytest-xdist hook
_._split_scope  # tests/scheduling.py: xdist LoadScopeScheduling override
