"""The inventory's conversion machinery: entries built as soon as both halves are known (in any arrival order),
objects needing a single-object read handed back, the frozen dataclasses' fast constructor, and the paused
cycle collector always restored."""
from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import threading

import pytest

from rollover.integrations import entra_model
from rollover.integrations.entra_model import (
    ApplicationInfo,
    InventoryAssembly,
    KeyCredentialInfo,
    PasswordCredentialInfo,
    SamlAppInventory,
    ServicePrincipalInfo,
    SigningCertificate,
    _application_info,
    _sp_info,
    build_inventory_entry,
    cycle_collection_paused,
    maker,
)

THUMB = bytes(range(20))


def sp(n: int, custom_key_identifier: bytes | None = THUMB) -> ServicePrincipalInfo:
    keys = [{"keyId": f"s{n}", "type": "X509CertAndPassword", "usage": "Sign", "displayName": "CN=x",
             "customKeyIdentifier": _b64(custom_key_identifier), "startDateTime": "2026-01-01T00:00:00Z",
             "endDateTime": "2027-01-01T00:00:00Z", "key": None},
            {"keyId": f"v{n}", "type": "AsymmetricX509Cert", "usage": "Verify", "displayName": "CN=x",
             "customKeyIdentifier": _b64(custom_key_identifier), "startDateTime": "2026-01-01T00:00:00Z",
             "endDateTime": "2027-01-01T00:00:00Z", "key": None}]
    return _sp_info({"id": f"sp{n}", "appId": f"app{n}", "displayName": f"App {n}",
                     "preferredTokenSigningKeyThumbprint": THUMB.hex().upper(), "keyCredentials": keys})


def registration(n: int, verify_thumbprint_known: bool = True) -> ApplicationInfo:
    keys = [{"keyId": f"k{n}", "type": "AsymmetricX509Cert", "usage": "Verify", "displayName": "CN=req",
             "customKeyIdentifier": _b64(THUMB if verify_thumbprint_known else b"not-a-thumbprint"),
             "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z", "key": None}]
    return _application_info({"id": f"reg{n}", "appId": f"app{n}", "displayName": f"App {n}",
                              "keyCredentials": keys, "passwordCredentials": [],
                              "requestSignatureVerification": {"isSignedRequestRequired": True}})


def _b64(value: bytes | None) -> str | None:
    import base64
    return base64.b64encode(value).decode() if value is not None else None


def never(_id: str):
    raise AssertionError("no single-object read expected")


@pytest.mark.parametrize("order", ["registrations first", "service principals first", "interleaved"])
def test_entries_are_the_same_whatever_arrives_first(order):
    sps, registrations = [sp(n) for n in range(6)], [registration(n) for n in range(0, 6, 2)]   # odd: none
    assembly = InventoryAssembly()
    if order == "registrations first":
        assembly.add_registrations(registrations)
        assembly.add_service_principals(sps)
    elif order == "service principals first":
        assembly.add_service_principals(sps)
        assembly.add_registrations(registrations)
    else:
        assembly.add_service_principals(sps[:3])
        assembly.add_registrations(registrations[:1])
        assembly.add_service_principals(sps[3:])
        assembly.add_registrations(registrations[1:])
    assembly.registrations_complete()
    entries = assembly.entries(never, never)
    expected = [build_inventory_entry(s, registrations[s_n // 2] if s_n % 2 == 0 else None)
                for s_n, s in enumerate(sps)]
    assert entries == expected
    assert [e.requires_signed_requests for e in entries] == [True, None] * 3


def test_service_principals_after_the_last_registration_are_built_at_once():
    assembly = InventoryAssembly()
    assembly.add_registrations([registration(1)])
    assembly.registrations_complete()
    assembly.add_service_principals([sp(1), sp(2)])
    assert [e.application_object_id for e in assembly.entries(never, never)] == ["reg1", None]


def test_objects_whose_thumbprints_need_a_read_are_read_once_each_before_their_entry():
    reads = []
    unknown_sp = sp(1, custom_key_identifier=b"uploaded-by-a-script")
    assembly = InventoryAssembly()
    assembly.add_service_principals([unknown_sp, sp(2), sp(2)])    # two SPs share app2's registration
    assembly.add_registrations([registration(1), registration(2, verify_thumbprint_known=False)])
    assembly.registrations_complete()

    def read_sp(sp_id):
        reads.append(sp_id)
        return sp(1)

    def read_registration(object_id):
        reads.append(object_id)
        return registration(2)

    entries = assembly.entries(read_sp, read_registration)
    assert reads == ["sp1", "reg2"]
    assert entries[0].active_thumbprint == THUMB.hex().upper()
    assert entries[1].verification_certificates[0].thumbprint == THUMB.hex().upper()


def test_entries_before_every_registration_arrived_is_a_bug_not_a_guess():
    assembly = InventoryAssembly()
    assembly.add_service_principals([sp(1)])
    with pytest.raises(RuntimeError):
        assembly.entries(never, never)


@pytest.mark.parametrize("cls", [KeyCredentialInfo, PasswordCredentialInfo, ServicePrincipalInfo, ApplicationInfo,
                                 SigningCertificate, SamlAppInventory])
def test_the_maker_makes_the_object_the_constructor_makes(cls):
    values = {f.name: _sample(f) for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    make = maker(cls)
    fast, normal = make(**values), cls(**values)
    assert type(fast) is cls and fast == normal and vars(fast) == vars(normal)   # defaults applied too
    assert make is maker(cls)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.display_name = "changed"
    with pytest.raises(TypeError, match="no field 'colour'"):
        make(**values, colour="red")
    missing = next(iter(values))
    with pytest.raises(TypeError, match=missing):
        make(**{name: value for name, value in values.items() if name != missing})


def _sample(field: dataclasses.Field):
    return {"start": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}.get(field.name, f"{field.name}-value")


def test_thumbprints_and_derived_facts_are_computed_once():
    service_principal = sp(1)
    assert service_principal.signing_certificates is service_principal.signing_certificates
    key = service_principal.key_credentials[1]
    assert key.thumbprint == THUMB.hex().upper() and "thumbprint" in vars(key)


def test_the_cycle_collector_is_restored_after_a_pause_even_when_it_fails():
    assert gc.isenabled()
    with pytest.raises(ValueError):
        with cycle_collection_paused():
            assert not gc.isenabled()
            raise ValueError("conversion failed")
    assert gc.isenabled()


def test_overlapping_pauses_end_together_and_a_collector_turned_off_by_others_stays_off():
    first_in, second_done = threading.Event(), threading.Event()

    def other_inventory():
        with cycle_collection_paused():
            first_in.set()
            second_done.wait(5)

    thread = threading.Thread(target=other_inventory)
    thread.start()
    first_in.wait(5)
    with cycle_collection_paused():
        pass
    assert not gc.isenabled()          # the other inventory still runs
    second_done.set()
    thread.join(5)
    assert gc.isenabled()

    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert entra_model._pauses["count"] == 0
