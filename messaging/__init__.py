"""What to send and when: templates, policy, outbox and inbox, reply router (issues: messaging, two-way SMS). Not built yet."""
