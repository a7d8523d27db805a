"""The diagnostic reports: surgical pathology and staging radiology.

The pathology report signs out the biopsy (specimen, gross and microscopic description, the
diagnosis with its tumour-type markers, and the molecular panel); the radiology report describes
the staging study (primary lesion, nodes, distant disease, pertinent negatives) and its
impression. Both are written from the patient's :class:`~mmlake.generate.notes_story.Story`.
"""

from __future__ import annotations

from mmlake.generate.notes_story import Story
from mmlake.generate.notes_templates import Concept, NoteBuilder, dx, fmt_date, listing, neg


def write_pathology(st: Story, b: NoteBuilder) -> None:
    p, rng, ct = st.p, st.rng, st.cancer
    b.start("CLINICAL HISTORY")
    biopsy = Concept(ct.biopsy[1], ct.biopsy[0], "procedure")
    st.say(b, "path_history", biopsy, site=st.site, date=fmt_date(rng, st.biopsy_date))
    b.start("SPECIMEN")
    b.line(f"{st.site.capitalize()}, {ct.biopsy[1]}")
    b.start("GROSS DESCRIPTION")
    pieces = ct.pieces.format(n=int(rng.integers(2, 6)))
    st.say(b, "path_gross", mrn=p.mrn, pieces=pieces, size=f"{rng.uniform(0.4, 2.5):.1f}")
    b.start("MICROSCOPIC DESCRIPTION")
    st.say(b, st.microscopy)
    b.start("DIAGNOSIS")
    b.line(f"{st.site.upper()}, {ct.biopsy[1].upper()}:")
    b.line("- {0}", st.histology)
    grade, depth = int(rng.integers(1, 4)), f"{rng.uniform(0.4, 6.0):.1f}"
    b.line("- " + ct.markers.format(pct=int(rng.integers(1, 96)), grade=grade, depth=depth))
    if p.cancer.key != "glioblastoma":
        invasion = rng.random() < 0.3 + 0.1 * p.stage
        lvi = dx("Lymphovascular invasion", negated=not invasion)
        b.line("- {0}: " + ("present" if invasion else "not identified"), lvi)
    b.start("MOLECULAR STUDIES")
    if not st.tested:
        st.say(b, "molecular_none")
        return
    if p.driver is not None:
        vaf = int(rng.integers(8, 61))
        found = dx(p.driver.label, p.driver.label)
        st.say(b, "molecular_found", found, hgvs=p.driver.hgvs_c, vaf=vaf, line=True)
    genes = [neg(g, f"{g} mutation") for g in ct.genes if p.driver is None or g != p.driver.gene]
    b.line(f"No pathogenic variants detected in {listing(len(genes), 'or')}.", *genes)


def write_radiology(st: Story, b: NoteBuilder) -> None:
    p, rng, ct = st.p, st.rng, st.cancer
    glioma = p.cancer.key == "glioblastoma"
    b.start("CLINICAL HISTORY")
    st.say(b, "rad_history", st.dx())
    b.start("TECHNIQUE")
    st.say(b, "technique_mr" if glioma else "technique_ct", n=int(rng.integers(7, 13)) * 10)
    b.start("COMPARISON")
    st.say(b, "comparison")
    b.start("FINDINGS")
    short = int(st.size_mm * rng.uniform(0.6, 0.95))
    lesion = dx(ct.lesion.format(site=st.site), "primary tumor")
    st.say(b, "rad_lesion", lesion, a=st.size_mm, s=short)
    if glioma:
        st.say(b, "rad_edema", dx("vasogenic edema"))
    elif p.stage >= 3:
        st.say(b, "rad_nodes", dx("nodal metastasis"), n=int(rng.integers(11, 30)))
    else:
        st.say(b, "rad_no_nodes", neg("lymphadenopathy", "lymphadenopathy"))
    distant = p.stage == 4 and not glioma
    metastatic = dx("metastatic disease")
    if distant:
        st.say(b, "rad_distant", metastatic, mets=ct.metastases, n=int(rng.integers(6, 40)))
    elif not glioma and rng.random() < 0.3:
        uncertain = dx("metastasis", "metastatic disease", uncertain=True)
        st.say(b, "rad_indeterminate", uncertain, n=int(rng.integers(3, 7)))
    for i in rng.choice(len(ct.negatives), size=2, replace=False):
        st.say(b, "No {0}.", neg(ct.negatives[int(i)], ct.negatives[int(i)]))
    b.start("IMPRESSION")
    st.say(b, "rad_impression", lesion, st.dx(), a=st.size_mm, line=True)
    if distant:
        b.line("2. Findings compatible with {0}, as described above.", metastatic)
    else:
        b.line("2. No evidence of distant {0}.", metastatic._replace(negated=True))
