"""Loopback fakes of the remote APIs (Webex, Microsoft Graph), the conversation harness and the demo."""
