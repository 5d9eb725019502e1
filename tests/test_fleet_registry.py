"""The registry: integrations in SQLite, secrets encrypted at rest."""

import sqlite3
import unicodedata

import pytest
from cryptography.fernet import Fernet

from core.errors import ConfigError
from fleet.errors import DuplicateIntegration, PortTaken, UnknownIntegration
from fleet.registry import Registry

URL = "http://127.0.0.1:5080"


@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "integrations.db", Fernet.generate_key().decode())


def test_add_get_and_secrets_only_encrypted_on_disk(registry):
    registry.add("Bilverksted Ålesund", "erp_sim", URL, 8101, "instance-token-0123456789",
                 username="admin", password="hemmelig-passord")
    found = registry.get("Bilverksted Ålesund")
    assert (found.port, found.active, found.username) == (8101, True, "admin")
    assert registry.credentials(found).password == "hemmelig-passord"
    assert registry.api_token(found) == "instance-token-0123456789"
    raw = registry.path.read_bytes()
    assert b"hemmelig-passord" not in raw and b"instance-token-0123456789" not in raw
    public = found.public()
    assert "credentials" not in public and "api_token" not in public and public["has_password"]
    assert "hemmelig" not in repr(found)


def test_names_are_normalised_so_composed_and_decomposed_are_one(registry):
    registry.add(unicodedata.normalize("NFD", "Bilverksted Ålesund"), "erp_sim", URL, 8101, "t" * 20)
    assert registry.get(unicodedata.normalize("NFC", "Bilverksted Ålesund")).port == 8101


def test_lookalike_names_are_one_workshop_also_beside_a_row_stored_before(registry):
    registry.add("Bennys\u00a0 Auto", "erp_sim", URL, 8101, "t" * 20)
    assert [i.workshop for i in registry.all()] == ["Bennys Auto"]
    assert registry.get("Bennys\u2003Auto ").port == 8101
    with pytest.raises(DuplicateIntegration):
        registry.add("Bennys Auto", "erp_sim", URL, 8102, "t" * 20)
    # a name stored un-normalised by an older version: found by its own spelling and by
    # the normal one, and no lookalike can be added beside it
    with sqlite3.connect(registry.path) as db:
        db.execute("UPDATE integrations SET workshop=?, name_key=? WHERE port=8101",
                   ("Bennys\u00a0Auto", "bennys_auto"))
    assert registry.get("Bennys\u00a0Auto").port == registry.get("Bennys Auto").port == 8101
    with pytest.raises(DuplicateIntegration):
        registry.add("Bennys Auto", "erp_sim", URL, 8102, "t" * 20)
    with pytest.raises(UnknownIntegration):
        registry.get("Bennys\udcffAuto")  # not UTF-8 (a command line): unknown, not a crash


def test_duplicates_and_names_that_would_share_files(registry):
    registry.add("Bennys Auto", "erp_sim", URL, 8101, "t" * 20)
    with pytest.raises(DuplicateIntegration):
        registry.add("Bennys Auto", "erp_sim", URL, 8102, "t" * 20)
    with pytest.raises(DuplicateIntegration, match="share files"):
        registry.add("bennys auto", "erp_sim", URL, 8103, "t" * 20)
    with pytest.raises(PortTaken):
        registry.add("Garage Tre", "erp_sim", URL, 8101, "t" * 20)


def test_update_keeps_what_is_not_given(registry):
    registry.add("Bennys Auto", "erp_sim", URL, 8101, "t" * 20, username="admin", password="pw")
    before, after = registry.update("Bennys Auto", password="new-pw", port=8102, erp_url=None)
    assert (after.port, after.erp_url, after.username) == (8102, URL, "admin")
    assert registry.credentials(after).password == "new-pw"
    assert registry.api_token(after) == "t" * 20
    assert after.updated_at >= before.updated_at
    _, after = registry.update("Bennys Auto", active=False)
    assert after.active is False


def test_remove_and_unknown(registry):
    registry.add("Bennys Auto", "erp_sim", URL, 8101, "t" * 20)
    registry.remove("Bennys Auto")
    assert registry.all() == []
    with pytest.raises(UnknownIntegration):
        registry.get("Bennys Auto")


def test_another_secret_key_cannot_read_the_secrets(registry):
    registry.add("Bennys Auto", "erp_sim", URL, 8101, "t" * 20)
    other = Registry(registry.path, Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        other.api_token(other.get("Bennys Auto"))


def test_a_bad_secret_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        Registry(tmp_path / "r.db", "not-a-fernet-key")


# -- slugs: each integration's path behind the front door, /w/<slug>/ -------------------

def test_slugs_are_made_once_and_unique(registry):
    for port, name in enumerate(("Bennys Auto", "Bennys-Auto", "BENNYS auto!", "東京"), 8101):
        registry.add(name, "erp_sim", URL, port, "t" * 20)
    slugs = {i.workshop: i.slug for i in registry.all()}
    assert slugs == {"Bennys Auto": "bennys-auto", "Bennys-Auto": "bennys-auto-2",
                     "BENNYS auto!": "bennys-auto-3", "東京": "workshop"}
    registry.update("Bennys-Auto", erp_url="http://other.example", active=False)
    assert registry.get("Bennys-Auto").slug == "bennys-auto-2"  # kept: its URL stays
    registry.remove("Bennys Auto")
    registry.add("Bennys Auto", "erp_sim", URL, 8120, "t" * 20)
    assert registry.get("Bennys Auto").slug == "bennys-auto"  # free again, taken again
    assert registry.get("東京").public()["slug"] == "workshop"


def test_a_registry_of_format_1_gets_slugs_oldest_first(tmp_path):
    import shutil
    from pathlib import Path
    from fleet.registry import FORMAT
    from tests.fixtures.write_fixtures import KEY

    path = tmp_path / "integrations.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "format-1" / "registry.db", path)
    with sqlite3.connect(path) as db:  # a name alike, added before "Bennys Auto"
        db.execute("INSERT INTO integrations (workshop, name_key, erp_system, erp_url, api_token,"
                   " active, port, created_at, updated_at) SELECT 'Bennys-Auto', 'bennys-auto',"
                   " erp_system, erp_url, api_token, 0, 5999, '2000-01-01', updated_at"
                   " FROM integrations WHERE workshop='Bennys Auto'")
    slugs = {i.workshop: i.slug for i in Registry(path, KEY).all()}
    assert slugs == {"Bennys-Auto": "bennys-auto", "Bennys Auto": "bennys-auto-2",
                     "Garage Tre": "garage-tre"}
    assert (tmp_path / "integrations.db.v1.bak").is_file() and FORMAT.version >= 2


def test_the_probe_worksheet_is_stored_changed_and_cleared(registry):
    """Registry format 3: the worksheet an instance's ERP probe opens (issue 27)."""
    added = registry.add("Probe Garage", "erp_sim", "http://127.0.0.1:5080", 5301, "t" * 20,
                         probe_worksheet="P-7")
    assert added.probe_worksheet == "P-7" and added.public()["probe_worksheet"] == "P-7"
    _, changed = registry.update("Probe Garage", probe_worksheet="")
    assert changed.probe_worksheet == ""
