"""The README and the pages of docs/ stay true: their Python examples run as written, the
tests they cite exist, and their relative links and images resolve.

docs/_incoming/ is a staging area for drafts, not published documentation: it is skipped.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
DOCS = ROOT / 'docs'
STAGING = DOCS / '_incoming'


def published_pages():
    """README.md, CHANGELOG.md and every Markdown page under docs/ except the staging area."""
    pages = [README, ROOT / 'CHANGELOG.md']
    pages += sorted(p for p in DOCS.rglob('*.md') if STAGING not in p.parents)
    return [p for p in pages if p.is_file()]


PAGES = published_pages()
FENCE = re.compile(r'^ {0,3}(```|~~~).*?^ {0,3}\1[ \t]*$', flags=re.S | re.M)
BLOCKS = [(page, index, block) for page in PAGES
          for index, block in enumerate(re.findall(r'```python\n(.*?)```', page.read_text(),
                                                   flags=re.S))]


def name(page):
    return page.relative_to(ROOT).as_posix()


def prose(text):
    """The text without fenced code blocks and inline code spans."""
    return re.sub(r'`[^`\n]*`', '', FENCE.sub('', text))


def link_targets(text):
    """Targets of Markdown links and images, reference definitions and HTML src/href."""
    text = prose(text)
    targets = re.findall(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+["\'(][^)]*)?\)', text)
    targets += re.findall(r'^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)', text, flags=re.M)
    targets += re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']+)["\']', text)
    return targets


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)   # links keep their text
    text = re.sub(r'<[^>]+>', '', text).strip().lower()
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def anchors(page):
    seen, found = {}, set()
    for heading in re.findall(r'^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$', FENCE.sub('', page.read_text()),
                              flags=re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f'{base}-{count}')
    found.update(re.findall(r'<a\s+(?:name|id)\s*=\s*["\']([^"\']+)["\']', page.read_text()))
    return found


def test_pages_are_found():
    assert README in PAGES and (DOCS / 'README.md') in PAGES
    assert not [p for p in PAGES if STAGING in p.parents]


def test_the_pages_have_python_examples():
    assert BLOCKS


@pytest.mark.parametrize('page, index, block', BLOCKS,
                         ids=[f'{name(p)}[{i}]' for p, i, _ in BLOCKS])
def test_python_example_runs(page, index, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(block, f'{name(page)}[python block {index}]', 'exec'), {})


def test_tests_named_in_the_docs_exist():
    """The README and docs/ name the tests that back their claims; each must exist."""
    tests = ROOT / 'tests'
    sources = '\n'.join(p.read_text() for p in tests.glob('test_*.py'))
    missing = []
    for page in PAGES:
        spans = re.findall(r'`([^`\n]+)`', page.read_text())
        named = {n for span in spans for n in re.findall(r'\b(test_\w+?)(?:\.py)?\b', span)}
        missing += [f'{name(page)}: {n}' for n in sorted(named)
                    if f'def {n}(' not in sources and not (tests / f'{n}.py').exists()]
    assert not missing, f'the docs name tests that do not exist: {missing}'


def test_the_docs_cite_tests():
    spans = re.findall(r'`([^`\n]+)`', '\n'.join(p.read_text() for p in PAGES))
    assert any(re.search(r'\btest_\w+', span) for span in spans)


@pytest.mark.parametrize('page', PAGES, ids=[name(p) for p in PAGES])
def test_relative_links_and_images_resolve(page):
    broken = []
    for target in link_targets(page.read_text()):
        if re.match(r'[a-zA-Z][a-zA-Z0-9+.-]*:|//', target):
            continue                                  # https:, mailto:, ...: not checked here
        path, _, anchor = target.partition('#')
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f'{target} (no such file)')
        elif ROOT not in file.parents and file != ROOT:
            broken.append(f'{target} (outside the repository)')
        elif anchor and file.suffix == '.md' and anchor not in anchors(file):
            broken.append(f'{target} (no heading #{anchor} in {name(file)})')
    assert not broken, f'{name(page)} has broken links: {broken}'


def test_the_docs_index_links_every_page():
    index = DOCS / 'README.md'
    linked = {(DOCS / t.partition('#')[0]).resolve() for t in link_targets(index.read_text())}
    pages = [p for p in DOCS.glob('*.md') if p != index]
    assert pages
    missing = sorted(name(p) for p in pages if p.resolve() not in linked)
    assert not missing, f'docs/README.md does not link {missing}'


def test_the_readme_links_the_docs_index_licence_and_changelog():
    targets = {t.partition('#')[0] for t in link_targets(README.read_text())}
    assert {'docs/README.md', 'LICENSE', 'CHANGELOG.md'} <= targets
