"""Offline language detection used by the validation language check."""

from __future__ import annotations

import pytest

from agentic_pipeline.ingest import language
from agentic_pipeline.ingest.extract import extract

from tests.ingest.conftest import BOOKS


@pytest.mark.parametrize(("name", "code"), [("kusamakura-ja.epub", "ja"), ("romeo-juliet.epub", "en"),
                                            ("live-manual-de.epub", "en")])
def test_sample_books(name: str, code: str) -> None:
    # live-manual-de.epub is tagged "de" but holds the untranslated English text.
    assert language.detect_language(extract(BOOKS / name).text).language == code


@pytest.mark.parametrize(("text", "code"), [
    ("Das ist nicht die Art, wie sich der Hund auf dem Sofa mit einer Katze verträgt, und es wird auch so bleiben.", "de"),
    ("Le chat est dans la maison et il ne veut pas sortir pour jouer avec les enfants du voisin.", "fr"),
    ("El perro de la casa no quiere salir con los niños porque es muy tarde para el paseo.", "es"),
    ("Это не самый короткий путь, но он ведёт к дому, где живут мои старые друзья.", "ru"),
    ("这是一个关于语言检测的简单例子，我们用汉字来测试中文识别是否正确工作。", "zh"),
])
def test_languages_by_script_and_stopwords(text: str, code: str) -> None:
    assert language.detect_language(text).language == code


def test_mojibake_and_empty_are_undetermined() -> None:
    assert language.detect_language("Ïëàâàþùèå îáúåêòû â äîêóìåíòå Ïîääåðæêà èíîñòðàííûõ ÿçûêîâ").language == "und"
    assert language.detect_language("").language == "und"


def test_normalise_language_tags() -> None:
    assert language.normalise_language("en-US") == "en"
    assert language.normalise_language("ja_JP") == "ja"
    assert language.normalise_language(None) is None
