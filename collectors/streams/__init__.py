"""Streams per provider: what each (provider, stream) reads and how (`base` defines the contract;
`m365`, `google`, `slack` register their streams; `windows` is the shared time-window polling)."""
