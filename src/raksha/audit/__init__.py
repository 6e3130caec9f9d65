"""The tamper-evident audit log: who saw what, who did what, and when."""

from raksha.audit.log import AuditEntry, AuditLog, AuditProblem, VerifyResult

__all__ = ["AuditEntry", "AuditLog", "AuditProblem", "VerifyResult"]
