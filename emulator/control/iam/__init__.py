"""IAM: principals, policies and their evaluation (groundwork; the dispatcher does not ask it yet)."""
