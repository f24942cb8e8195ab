"""One module per SaaS provider: client factory, read calls, write calls and the one error mapping.

Collectors, remediation and notifications reach a provider only through here. See README.md.
"""

from providers.registry import ProviderSpec, ReadContext, get, names, register, registered

__all__ = ["ProviderSpec", "ReadContext", "get", "names", "register", "registered"]
