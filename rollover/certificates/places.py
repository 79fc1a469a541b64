"""Where admins click: the Entra admin center and Webex places the diagnosis and rotations name.

Sources of the paths (short citations; details in docs/architecture.md and the issue 10 research):
- Entra, Verification certificates: Microsoft Learn "Enforce signed SAML authentication requests"
  (Enterprise applications > app > Single sign-on > SAML Certificates > Verification certificates).
- Entra, Token encryption: Microsoft Learn "Configure SAML token encryption" (app page > Token encryption).
- Entra, SAML Signing Certificate: Microsoft Learn "Manage certificates for federated single sign-on".
- Control Hub: Microsoft's Cisco Webex tutorial ("Organization Settings", "Authentication" section) and
  Cisco help "Single sign-on integration in Control Hub"; the wizard's wording past Authentication is not
  documented publicly, so it is named only that far.
- Site Administration: Cisco help i75tebb ("Configuration > Common Site Settings > SSO Configuration >
  Site SP Certificate Manager", select the new certificate, then Update) and Microsoft's Webex Meetings
  tutorial ("SSO Configuration", "Import SAML Metadata").
"""

from __future__ import annotations

from rollover.certificates.webex_trust import CONTROL_HUB, SITE_ADMIN

ENTRA_APP = "Entra admin center > Enterprise applications > {app}"
THE_WEBEX_APP = "(the Webex app)"

SP_CERT_PLACE = {   # where the new Webex SP certificate is activated
    CONTROL_HUB: "Control Hub > Organization Settings > Authentication (single sign-on)",
    SITE_ADMIN: "Site Administration > Configuration > Common Site Settings > SSO Configuration > "
                "Site SP Certificate Manager (select it, then Update)",
}
IDP_CERT_PLACE = {  # where Entra's Federation Metadata XML (its signing certificate) is imported
    CONTROL_HUB: "Control Hub > Organization Settings > Authentication (import Entra's Federation Metadata XML)",
    SITE_ADMIN: "Site Administration > Configuration > Common Site Settings > SSO Configuration (Import SAML "
                "Metadata, or Entra's certificate in the Site Certificate Manager)",
}
IMPORT_UNKNOWN = "the application that trusts it (Control Hub or Site Administration for Webex)"


def verification_place(app: str = THE_WEBEX_APP) -> str:
    return f"{ENTRA_APP.format(app=app)} > Single sign-on > SAML Certificates > Verification certificates"


def token_encryption_place(app: str = THE_WEBEX_APP) -> str:
    return f"{ENTRA_APP.format(app=app)} > Token encryption"


def signing_place(app: str = THE_WEBEX_APP) -> str:
    return f"{ENTRA_APP.format(app=app)} > Single sign-on > SAML Certificates"


def other_app_import_place(app: str) -> str:
    return f"{app}'s SAML settings"


def activation_place(kinds) -> str:
    """Where the new Webex certificate is activated; both places when the trust is not known."""
    return " or ".join(SP_CERT_PLACE[k] for k in sorted(set(kinds)) or (CONTROL_HUB, SITE_ADMIN))


def import_place(kinds) -> str:
    return " or ".join(IDP_CERT_PLACE[k] for k in sorted(set(kinds))) if kinds else IMPORT_UNKNOWN


VERIFICATION_PLACE = verification_place()
TOKEN_ENCRYPTION_PLACE = token_encryption_place()
ENTRA_SIGNING_PLACE = signing_place()
