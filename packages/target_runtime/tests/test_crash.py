"""The crash seam: unarmed points do nothing; one variable (or the e2e tests' older ones) arms."""

from __future__ import annotations

import pytest
from target_runtime import crash


def test_unarmed_point_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (crash.ENV, *crash.LEGACY):
        monkeypatch.delenv(variable, raising=False)
    assert crash.armed() == set()
    for name in crash.POINTS:
        crash.point(name, 1)  # still alive


def test_unknown_point_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown crash point"):
        crash.point("after_lunch")


def test_one_variable_arms_named_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crash.ENV, "after_client_update, after_contact_write")
    assert crash.armed() == {"after_client_update", "after_contact_write"}


@pytest.mark.parametrize(
    ("variable", "value", "point"),
    [
        ("FCSYNC_TEST_CRASH_AFTER_CONTACT_WRITE", "partial", "contact_write_partial"),
        ("FCSYNC_TEST_CRASH_AFTER_CONTACT_WRITE", "written", "after_contact_write"),
        ("FCSYNC_TEST_CRASH_AFTER_UPDATE", "1", "after_client_update"),
        ("FCSYNC_TEST_CRASH_AFTER_INSERT", "1", "after_client_insert"),
    ],
)
def test_the_e2e_tests_variables_still_arm_their_point(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, point: str
) -> None:
    monkeypatch.delenv(crash.ENV, raising=False)
    monkeypatch.setenv(variable, value)
    assert crash.armed() == {point}


def test_an_armed_point_stops_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crash.ENV, "after_client_insert")
    exits: list[object] = []
    monkeypatch.setattr(crash.os, "_exit", exits.append)
    monkeypatch.setattr(crash.os, "kill", lambda *args: exits.append(args))
    crash.point("after_client_insert", 42)
    assert exits == [70]
    monkeypatch.setenv(crash.ENV, "after_client_update")
    crash.point("after_client_update", 42)
    assert exits[1] == (crash.os.getpid(), crash.signal.SIGKILL)
