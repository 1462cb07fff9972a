"""Language detection: plain English is recognised at once; other languages are not taken for it."""

from __future__ import annotations

import pytest
from langdetect import detect_langs

from gateway.language import _plainly_english, detect_language


@pytest.mark.parametrize(
    "text",
    [
        "fix my door pls its been weeks",
        "The boiler has been broken for three days and nobody has come out to fix it.",
        "I’ve reported the damp in the bedroom twice and it’s getting worse",
        "Please can someone call me back about the repair, I have been waiting since May",
    ],
)
def test_plain_english_is_english(text: str) -> None:
    assert _plainly_english(text)
    assert detect_language(text) == "en"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Mam problem z grzejnikiem od tygodnia, to jest bardzo zimno i nie mam wody", "pl"),
        ("Tengo un problema con la calefacción desde hace dos semanas y no me llaman", "es"),
        ("Mae'r boeler wedi torri ers tair wythnos a does neb wedi dod i'w drwsio", "cy"),
        ("Ik heb een probleem met de verwarming in mijn flat, het is koud en niemand komt", "nl"),
        ("Ich habe seit zwei Wochen keine Heizung und das Wasser ist kalt, was soll ich tun", "de"),
        ("Ça fait trois semaines que le chauffage ne marche pas dans mon appartement", "fr"),
        ("Nu am apă caldă de o săptămână și nimeni nu a venit să repare centrala", "ro"),
    ],
)
def test_other_languages_are_left_to_the_detector(text: str, language: str) -> None:
    assert not _plainly_english(text)
    assert detect_language(text) == language


def test_the_shortcut_agrees_with_the_detector_on_the_evaluation_messages() -> None:
    """Every labelled message the shortcut calls English, langdetect calls English too."""
    import json
    from pathlib import Path

    lines = (Path(__file__).parent / "data" / "triage" / "eval.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"][:5000] for line in lines if line.strip()]
    shortcut = [text for text in texts if _plainly_english(text)]
    assert len(shortcut) > len(texts) // 2
    assert all(detect_langs(text)[0].lang == "en" for text in shortcut)


def test_a_handful_of_words_is_not_enough_for_the_shortcut() -> None:
    assert not _plainly_english("the and of my")
