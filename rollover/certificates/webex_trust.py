"""Which SAML service-provider documents are Webex's, and which Entra app serves them.

Only two kinds of document are Webex's own (Cisco help "Single sign-on integration in Control Hub";
"Manage the SP certificate in Site Administration", help.webex.com i75tebb and g5ey83):
- **Control Hub** SSO: entityID ``https://idbroker.webex.com/<org-id>`` or an ACS on an idbroker host
  (``.../idb/Consumer/metaAlias/<org-id>/sp``);
- **Site Administration** SSO of a Meetings site: the default SP ID ``http://www.webex.com``, the site URL
  as SP ID, or an ACS ``https://<site>.webex.com/dispatcher/SAML2AuthService?siteurl=<site>``.
Every other SP document (Microsoft Online, Salesforce, ...) is some other service provider's.

An Entra app serves a Webex trust when its Identifier (``identifierUris`` / ``servicePrincipalNames``)
equals the entityID (for Site Administration also the site URL), or a reply URL equals an ACS URL
(Microsoft's Cisco Webex tutorials: uploading the SP metadata fills Identifier and Reply URL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional
from urllib.parse import parse_qs, urlsplit

from rollover.certificates.parsing import Document, EntityInfo

CONTROL_HUB = "control-hub"
SITE_ADMIN = "site-admin"
ACTIVATE_IN = {CONTROL_HUB: "control-hub", SITE_ADMIN: "site-administration"}   # the JSON words of `explain`
TRUST_LABEL = {CONTROL_HUB: "Control Hub", SITE_ADMIN: "Site Administration"}

CONTROL_HUB_HOST = re.compile(r"^idbroker[a-z0-9.-]*\.webex\.com$")
WEBEX_SITE_HOST = re.compile(r"^([a-z0-9-]+)(\.my)?\.webex\.com$")
SITE_ADMIN_DEFAULT_ENTITY_IDS = ("http://www.webex.com", "https://www.webex.com")
SITE_ACS_PATH = "/dispatcher/SAML2AuthService"


@dataclass(frozen=True)
class WebexTrust:
    """A Webex SP entity recognised as Control Hub or Site Administration SSO."""

    kind: str
    entity_id: str
    name: str  # org id (Control Hub) or site name (Site Administration); "" when unknown
    inferred: bool
    reason: str
    acs_urls: tuple[str, ...] = ()
    authn_requests_signed: Optional[bool] = None

    @property
    def label(self) -> str:
        suffix = f" {self.name}" if self.name else ""
        return f"{TRUST_LABEL[self.kind]}{suffix}" + (" (inferred)" if self.inferred else "")

    def identifiers(self) -> set[str]:
        """What an Entra app serving this trust has as Identifier (normalised)."""
        found = {normalise_identifier(self.entity_id)}
        if self.kind == SITE_ADMIN:   # the site URL is the recommended SP ID (Cisco g5ey83)
            found |= {normalise_identifier(f"https://{urlsplit(acs).hostname}") for acs in self.acs_urls
                      if urlsplit(acs).path.startswith(SITE_ACS_PATH) and urlsplit(acs).hostname}
        return found


@dataclass(frozen=True)
class AppIdentity:
    """How an Entra app is addressed by service providers: its Identifier values and reply URLs."""

    identifiers: tuple[str, ...] = ()
    reply_urls: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return bool(self.identifiers or self.reply_urls)


def recognise_trusts(documents: Iterable[Document]) -> list[WebexTrust]:
    """Webex SP entities of the documents, each recognised once."""
    trusts: dict[str, WebexTrust] = {}
    for document in documents:
        for entity in document.entities:
            trust = classify_webex_entity(entity)
            if trust and trust.entity_id not in trusts:
                trusts[trust.entity_id] = trust
    return list(trusts.values())


def is_webex_document(document: Document) -> bool:
    return bool(recognise_trusts([document]))


def classify_webex_entity(entity: EntityInfo) -> Optional[WebexTrust]:
    """Control Hub (idbroker entityID or ACS) or Site Administration (site URL, www.webex.com, dispatcher ACS)."""
    if "sp" not in entity.roles:
        return None
    return _as_control_hub(entity) or _as_site_admin(entity)


def app_webex_kind(app: AppIdentity) -> Optional[str]:
    """CONTROL_HUB / SITE_ADMIN when the app's Identifier or reply URLs have Webex's shape, else None."""
    for identifier in app.identifiers or ("",):
        trust = classify_webex_entity(EntityInfo(entity_id=identifier, roles=["sp"], acs_urls=list(app.reply_urls)))
        if trust:
            return trust.kind
    return None


def app_serves(app: AppIdentity, trust: WebexTrust) -> bool:
    """True when the app's Identifier or a reply URL names this Webex entity."""
    if {normalise_identifier(i) for i in app.identifiers} & trust.identifiers():
        return True
    return bool({normalise_identifier(u) for u in app.reply_urls} & {normalise_identifier(a) for a in trust.acs_urls})


def normalise_identifier(value: str) -> str:
    """Compare URLs without their scheme, host case or one trailing slash; other values as given."""
    parts = urlsplit(value.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        return f"//{parts.netloc.lower()}{rest[:-1] if rest.endswith('/') else rest}"
    return value.strip()


def _as_control_hub(entity: EntityInfo) -> Optional[WebexTrust]:
    for url, what in [(entity.entity_id, "entityID")] + [(acs, "ACS URL") for acs in entity.acs_urls]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if CONTROL_HUB_HOST.match(host):
            segments = [s for s in parts.path.split("/") if s]
            org_id = segments[0] if what == "entityID" and segments else _org_from_meta_alias(segments)
            regional = host != "idbroker.webex.com"
            reason = f"its {what} is on {host}" + (
                " (a regional identity broker host; regional hosts are not confirmed by Cisco documentation)"
                if regional else "")
            return _trust(entity, CONTROL_HUB, org_id, regional, reason)
    return None


def _org_from_meta_alias(segments: list[str]) -> str:
    # .../idb/Consumer/metaAlias/<org-id>/sp
    if "metaAlias" in segments and segments.index("metaAlias") + 1 < len(segments):
        return segments[segments.index("metaAlias") + 1]
    return ""


def _as_site_admin(entity: EntityInfo) -> Optional[WebexTrust]:
    for acs in entity.acs_urls:
        parts = urlsplit(acs)
        if parts.path.startswith(SITE_ACS_PATH):
            site = parse_qs(parts.query).get("siteurl", [""])[0] or _site_from_host(parts.hostname or "")
            return _trust(entity, SITE_ADMIN, site, False,
                          "its ACS URL is a Webex Meetings site's /dispatcher/SAML2AuthService")
    if entity.entity_id.rstrip("/") in SITE_ADMIN_DEFAULT_ENTITY_IDS:
        return _trust(entity, SITE_ADMIN, "", False,
                      "its entityID is http://www.webex.com, the Site Administration default SP ID")
    site = _site_from_host(urlsplit(entity.entity_id).hostname or "")
    if site and urlsplit(entity.entity_id).path.strip("/") == "":
        return _trust(entity, SITE_ADMIN, site, False, "its entityID is a Webex Meetings site URL")
    return None


def _trust(entity: EntityInfo, kind: str, name: str, inferred: bool, reason: str) -> WebexTrust:
    return WebexTrust(kind, entity.entity_id, name, inferred, reason, tuple(entity.acs_urls),
                      entity.authn_requests_signed)


def _site_from_host(host: str) -> str:
    match = WEBEX_SITE_HOST.match(host.lower())
    return match.group(1) if match and match.group(1) != "www" and not match.group(1).startswith("idbroker") else ""
