"""The gateway's use cases: sign-in and who is calling (``signin``), managing accounts (``accounts``), scope
enforcement before forwarding (``access``), the audit log's listing (``audit``), public certificate checks
(``certificates``); over the ports in ``ports``."""

from .access import Access
from .accounts import AccountAdmin
from .audit import Audit, AuditQuery
from .certificates import Certificates, CertificateView
from .signin import Caller, Sessions, SignedIn, SigninLimits

__all__ = [
    "Access",
    "AccountAdmin",
    "Audit",
    "AuditQuery",
    "Caller",
    "CertificateView",
    "Certificates",
    "Sessions",
    "SignedIn",
    "SigninLimits",
]
