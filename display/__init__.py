"""Waiting-room display pages and their Socket.IO namespace (issue: waiting-room display). Not built yet."""
