"""Moved to `raksha.redact`, the one redaction module; this name stays until its last
importer is updated."""

from raksha.redact import MASK, is_secret_key, mask_url, redact, url_secrets

__all__ = ["MASK", "is_secret_key", "mask_url", "redact", "url_secrets"]
