"""The Meltano project itself: four plugins with every setting documented, four jobs, the
schedules, and one state per direction."""

from __future__ import annotations

import yaml

from .conftest import ROOT, Project

PLUGINS = ("tap-factusol", "tap-clientify", "target-clientify", "target-factusol")


def test_every_setting_is_documented_and_listed_by_meltano(project: Project) -> None:
    spec = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    declared = {p["name"]: p for kind in spec["plugins"].values() for p in kind}
    assert "variant" not in (ROOT / "meltano.yml").read_text(encoding="utf-8")
    for name in PLUGINS:
        plugin = declared[name]
        assert all(plugin.get(key) for key in ("namespace", "pip_url", "executable")), name
        listed = project.meltano("config", "list", "--all", name).stdout
        for setting in plugin["settings"]:
            assert setting.get("description"), f"{name}.{setting['name']} has no description"
            assert setting["name"] in listed, f"{name}.{setting['name']} missing from config list"
            secret = any(w in setting["name"] for w in ("password", "api_key"))
            assert bool(setting.get("sensitive")) == secret, f"{name}.{setting['name']}"
    jobs = {job["name"] for job in spec["jobs"]}
    assert jobs == {
        "factusol-to-clientify",
        "clientify-to-factusol",
        "factusol-to-clientify-full",
        "clientify-to-factusol-full",
    }
    assert {s["job"] for s in spec["schedules"]} == jobs


def test_each_direction_keeps_its_own_state(project: Project) -> None:
    project.run("factusol-to-clientify")
    project.run("clientify-to-factusol")
    listed = project.meltano("state", "list").stdout
    assert "dev:tap-factusol-to-target-clientify" in listed
    assert "dev:tap-clientify-to-target-factusol" in listed
    for state_id in (
        "dev:tap-factusol-to-target-clientify",
        "dev:tap-clientify-to-target-factusol",
    ):
        bookmarks = project.state(state_id)["singer_state"]["bookmarks"]
        assert bookmarks, state_id
