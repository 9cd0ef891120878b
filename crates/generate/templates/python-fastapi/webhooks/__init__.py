"""Cafe24 webhooks: verified (fail closed), deduplicated and stored before the 200, then acted
on off the request path (90077/90078 revoke the mall; the app's handlers run)."""
