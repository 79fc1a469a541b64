"""The Webex enterprise app as a JSON file: for admins who cannot (yet) grant the bot Graph rights.

Accepted shapes are exactly what Graph v1.0 returns (camelCase), as ``az`` prints them:
- the **application** object: ``az ad app show --id <appId>`` / ``GET /applications/{id}``;
- the **service principal**: ``az ad sp show --id <appId>`` / ``GET /servicePrincipals/{id}``.
Each file is recognised by its properties, in any order; one of each kind at most, of the same appId.
The application holds the verification and token encryption settings (Graph CSDL: requestSignatureVerification
is an application property; Microsoft Learn "Configure SAML token encryption": encryption certificates "are
stored on the application object"); the service principal holds the token-signing certificates.

What is kept of a file (``AppFile.body``) is only what the diagnosis reads: no passwordCredentials, and no
``key`` of a Sign entry (never store anything that could be private key material).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rollover.certificates.trust_facts import EntraAppFacts
from rollover.errors import UserError
from rollover.integrations.entra_model import _application_info, _sp_info, build_inventory_entry, to_trust_facts

APPLICATION, SERVICE_PRINCIPAL = "application", "servicePrincipal"
KIND_WORDS = {APPLICATION: "application object", SERVICE_PRINCIPAL: "service principal"}
APPLICATION_ONLY = ("identifierUris", "requestSignatureVerification", "web", "api", "uniqueName", "publisherDomain")
SERVICE_PRINCIPAL_ONLY = ("servicePrincipalNames", "servicePrincipalType", "preferredTokenSigningKeyThumbprint",
                          "appOwnerOrganizationId", "preferredSingleSignOnMode")
KEPT = {
    APPLICATION: ("id", "appId", "displayName", "identifierUris", "keyCredentials", "requestSignatureVerification",
                  "tokenEncryptionKeyId", "web"),
    SERVICE_PRINCIPAL: ("id", "appId", "displayName", "servicePrincipalNames", "servicePrincipalType",
                        "preferredSingleSignOnMode", "preferredTokenSigningKeyThumbprint", "keyCredentials",
                        "tokenEncryptionKeyId", "replyUrls", "notificationEmailAddresses"),
}
HOW_TO = "`az ad app show --id <appId>` or `az ad sp show --id <appId>`"
BOMS = (("utf-8-sig", b"\xef\xbb\xbf"), ("utf-16", b"\xff\xfe"), ("utf-16", b"\xfe\xff"))


@dataclass(frozen=True)
class AppFile:
    """One recognised file: its kind, the app it describes, and the properties the diagnosis reads."""

    name: str
    kind: str
    app_id: str
    display_name: str
    body: dict

    @property
    def describes(self) -> str:
        return f"{KIND_WORDS[self.kind]} of {self.display_name or self.app_id}"


def looks_like_json(data: bytes) -> bool:
    """A dropped file is an app's JSON (not metadata or a certificate) when it starts with { or [."""
    for encoding, bom in BOMS:
        if data.startswith(bom):
            data = data[len(bom):].decode(encoding, "replace").encode()
            break
    return data.lstrip()[:1] in (b"{", b"[")


def read_app_file(data: bytes, name: str, max_bytes: int) -> AppFile:
    """Recognise and reduce one application or service principal JSON; a UserError names what is wrong."""
    if len(data) > max_bytes:
        raise UserError(f"Cannot read {name}: it is larger than the {max_bytes // (1024 * 1024)} MB limit.")
    item = _single_object(_parse(data, name), name)
    kind = _kind_of(item, name)
    app_id, object_id = item.get("appId"), item.get("id")
    if not isinstance(app_id, str) or not app_id or not isinstance(object_id, (str, type(None))):
        raise UserError(f"Cannot read {name}: its appId is missing or not a string, so I cannot tell which app it is.")
    body = {key: item[key] for key in KEPT[kind] if key in item}
    body["keyCredentials"] = [_without_private_material(entry, name) for entry in _list(item, "keyCredentials", name)]
    display = item.get("displayName") if isinstance(item.get("displayName"), str) else ""
    app_file = AppFile(name, kind, app_id, display, body)
    facts_of([app_file])   # every property converts, or the file is refused now rather than at each diagnosis
    return app_file


def facts_of(files: list[AppFile]) -> EntraAppFacts:
    """The diagnosis input from an application file and/or a service principal file of one app."""
    by_kind: dict[str, AppFile] = {}
    for app_file in files:
        if app_file.kind in by_kind:
            raise UserError(f"{by_kind[app_file.kind].name} and {app_file.name} are both the "
                            f"{KIND_WORDS[app_file.kind]}; give one application and/or one service principal.")
        by_kind[app_file.kind] = app_file
    app_ids = {f.app_id for f in files}
    if len(app_ids) > 1:
        first, other = files[0], next(f for f in files if f.app_id != files[0].app_id)
        raise UserError(f"{first.name} (appId {first.app_id}) and {other.name} (appId {other.app_id}) are not the "
                        "same app.")
    application, sp = by_kind.get(APPLICATION), by_kind.get(SERVICE_PRINCIPAL)
    try:
        return to_trust_facts(build_inventory_entry(
            _sp_info({"id": "", **sp.body}) if sp else None,
            _application_info({"id": "", **application.body}) if application else None))
    except (KeyError, TypeError, ValueError) as error:   # the file's shapes; anything else is a bug
        names = " / ".join(f.name for f in files)
        raise UserError(f"Cannot read {names}: a property is not as Graph returns it ({_one_line(error)}); "
                        f"save it again with {HOW_TO}.") from error


def _parse(data: bytes, name: str) -> Any:
    text = None
    for encoding, bom in BOMS:
        if data.startswith(bom):
            text = data.decode(encoding, "replace")
            break
    try:
        return json.loads(text if text is not None else data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UserError(f"Cannot read {name}: it is not UTF-8 text ({_one_line(error)}).") from error
    except RecursionError as error:
        raise UserError(f"Cannot read {name}: its JSON is nested too deeply to be an app.") from error
    except ValueError as error:
        raise UserError(f"Cannot read {name}: it is not valid JSON ({_one_line(error)}).") from error


def _single_object(value: Any, name: str) -> dict:
    """An object; a one-element array or a Graph collection ({"value": [x]}) is unwrapped."""
    if isinstance(value, dict) and isinstance(value.get("value"), list) and "appId" not in value:
        value = value["value"]
    if isinstance(value, list):
        if len(value) != 1:
            raise UserError(f"Cannot read {name}: it holds {len(value)} apps; give the JSON of one app ({HOW_TO}).")
        value = value[0]
    if not isinstance(value, dict):
        raise UserError(f"Cannot read {name}: it is JSON but not an app object ({HOW_TO} prints one).")
    return value


def _kind_of(item: dict, name: str) -> str:
    context = str(item.get("@odata.context") or "")
    odata_type = str(item.get("@odata.type") or "")
    if context.endswith("#applications/$entity") or odata_type == "#microsoft.graph.application":
        return APPLICATION
    if context.endswith("#servicePrincipals/$entity") or odata_type == "#microsoft.graph.servicePrincipal":
        return SERVICE_PRINCIPAL
    application = any(key in item for key in APPLICATION_ONLY)
    service_principal = any(key in item for key in SERVICE_PRINCIPAL_ONLY)
    if application != service_principal:
        return APPLICATION if application else SERVICE_PRINCIPAL
    if any(key in item for key in ("AppId", "KeyCredentials", "DisplayName")):
        raise UserError(f"Cannot read {name}: its property names are PowerShell's (AppId, KeyCredentials), not "
                        f"Graph's; save it with {HOW_TO}, or Invoke-MgGraphRequest's JSON output.")
    raise UserError(f"Cannot read {name}: it is neither an application nor a service principal as Graph returns "
                    f"them ({HOW_TO}).")


def _list(item: dict, key: str, name: str) -> list:
    value = item.get(key) or []
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise UserError(f"Cannot read {name}: its {key} is not a list of objects as Graph returns it.")
    return value


KEPT_KEY_PROPERTIES = ("keyId", "type", "usage", "key", "customKeyIdentifier", "displayName", "startDateTime",
                       "endDateTime")
PUBLIC_KEY_USAGES = ("Verify", "Encrypt")     # their key is a public certificate


def _without_private_material(entry: dict, name: str) -> dict:
    if not isinstance(entry.get("keyId"), str):
        raise UserError(f"Cannot read {name}: a keyCredentials entry has no keyId.")
    kept = {key: entry.get(key) for key in KEPT_KEY_PROPERTIES if key in entry}
    if entry.get("usage") not in PUBLIC_KEY_USAGES:
        kept["key"] = None        # a Sign entry (or one of unknown usage) may carry a private key: never keep it
    return kept


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 160 else text[:157] + "..."

