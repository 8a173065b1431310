"""What every result passes through on its way out: secret scrubbing, PII redaction, the audit log."""
