"""Management-key security: who the client is, the key check, and the failure ban."""
