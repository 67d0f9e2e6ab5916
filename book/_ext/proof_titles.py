"""Sphinx extension of the book: the Proof Index lists each theorem by its type, title and chapter
("Theorem: Moments of the normalized values", in the chapter "BN as a transform") instead of by its internal label.

sphinx-proof 0.2 names each index entry by its label and keeps no title in its registry; this
extension reads the titles from the doctrees and gives the index its entries.
"""

from __future__ import annotations

from docutils import nodes
from sphinx_proof.domain import ProofIndex

_original = ProofIndex.generate


#: TeX in a title shown as plain text in the index (the index page has no math rendering).
_PLAIN = ((r"\mathbf 1", "𝟏"), (r"\hat x", "x̂"), (r"\epsilon", "ε"), (r"\to", "→"), (r"\sigma", "σ"),
          (r"\mu", "μ"), (r"\gamma", "γ"), (r"\beta", "β"))


def _plain(title: nodes.Node) -> str:
    parts = []
    for n in title.findall(lambda n: isinstance(n, (nodes.Text, nodes.math))):
        if isinstance(n, nodes.math):
            tex = n.astext()
            for a, b in _PLAIN:
                tex = tex.replace(a, b)
            parts.append(tex)
        elif not isinstance(n.parent, nodes.math):
            parts.append(str(n))
    return "".join(parts)


def _read_titles(app, doctree) -> None:
    titles = app.env.__dict__.setdefault("proof_titles", {})
    for node in doctree.findall(nodes.Admonition):
        label = node.get("label") or (node.get("ids") or [None])[0]
        if not node.get("realtype") or not label:
            continue
        title = next(iter(node.findall(nodes.title)), None)
        text = _plain(title).strip().strip("()").strip() if title is not None else ""
        titles[label] = text


def _purge(app, env, docname) -> None:
    proofs = getattr(env, "proof_list", {})
    titles = getattr(env, "proof_titles", {})
    for label in [k for k in titles if proofs.get(k, {}).get("docname") == docname]:
        del titles[label]


def _merge(app, env, docnames, other) -> None:
    env.__dict__.setdefault("proof_titles", {}).update(getattr(other, "proof_titles", {}))


def generate(self, docnames=None):
    proofs = getattr(self.domain.env, "proof_list", None)
    if not proofs:
        return _original(self, docnames)
    titles = getattr(self.domain.env, "proof_titles", {})
    content: dict[str, list] = {}
    for anchor, v in proofs.items():
        kind = v["realtype"].title()
        name = f"{kind}: {titles.get(anchor) or anchor}"
        title = self.domain.env.titles.get(v["docname"])  # the chapter's title, not its file name
        chapter = title.astext() if title is not None else v["docname"].rsplit("/", 1)[-1]
        # name, subtype, docname, anchor, extra, qualifier, description
        content.setdefault(kind, []).append((name, 0, v["docname"], anchor, chapter, "", ""))
    return sorted((k, sorted(entries)) for k, entries in content.items()), True


def setup(app):
    ProofIndex.generate = generate
    app.connect("doctree-read", _read_titles)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
