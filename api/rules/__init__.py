"""Detection rules over HTTP: the loaded pack, validating and testing a rule sent in the body, suppressions."""
