"""The diagnostic reports: surgical pathology, and radiology of each imaging study.

The pathology report signs out the biopsy (specimen, gross and microscopic description, the
diagnosis with its tumour-type markers, and the molecular panel). A radiology report describes one
DICOM study of ``imaging_dicom.plan_studies``: the target lesion with the long and short axes of
the lesion in the images (rounded to mm), then nodes, distant disease, pertinent negatives and the
impression. A restaging report compares with the prior study (its date and accession) and words
the size change from the two measured diameters only, so it never contradicts the images. Both
report types are written from the patient's :class:`~mmlake.generate.notes_story.Story`.
"""

from __future__ import annotations

from mmlake.generate.imaging_dicom import StudyPlan
from mmlake.generate.notes_story import Story, mm
from mmlake.generate.notes_templates import Concept, NoteBuilder, dx, fmt_date, listing, neg

# A change of the longest diameter below this fraction of the prior one is reported as stable.
STABLE_FRACTION = 0.1


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


def axes_mm(study: StudyPlan) -> tuple[int, int]:
    """The lesion's longest axial diameter and the perpendicular short axis, in whole mm."""
    return mm(study.lesion.diameter_mm), mm(2 * study.lesion.semi_axes[1])


def size_change(before: int, after: int) -> str:
    """How a report words the change of the longest diameter: stable, larger or smaller."""
    if abs(after - before) < STABLE_FRACTION * before:
        return "stable"
    return "larger" if after > before else "smaller"


def write_radiology(st: Story, b: NoteBuilder, study: StudyPlan) -> None:
    p, rng, ct = st.p, st.rng, st.cancer
    glioma = p.cancer.key == "glioblastoma"
    prior = st.studies[study.ordinal - 1] if study.ordinal else None
    long, short = axes_mm(study)
    b.start("CLINICAL HISTORY")
    st.say(b, "rad_history" if prior is None else "rad_history_restaging", st.dx())
    b.start("TECHNIQUE")
    st.say(b, "technique_mr" if glioma else "technique_ct", n=int(rng.integers(7, 13)) * 10)
    b.start("COMPARISON")
    if prior is None:
        st.say(b, "comparison")
    else:
        date = fmt_date(rng, prior.when.date())
        st.say(b, "rad_comparison", scan=ct.scan, date=date, acc=prior.accession)
    b.start("FINDINGS")
    lesion = dx(ct.lesion.format(site=st.site), "primary tumor")
    distant = p.stage == 4 and not glioma
    metastatic = dx("metastatic disease")
    if prior is not None:
        _restaging(st, b, lesion, metastatic, (long, short), axes_mm(prior))
        return
    st.say(b, "rad_lesion", lesion, a=long, s=short)
    if glioma:
        st.say(b, "rad_edema", dx("vasogenic edema"))
    elif p.stage >= 3:
        st.say(b, "rad_nodes", dx("nodal metastasis"), n=int(rng.integers(11, 30)))
    else:
        st.say(b, "rad_no_nodes", neg("lymphadenopathy", "lymphadenopathy"))
    if distant:
        st.say(b, "rad_distant", metastatic, mets=ct.metastases, n=int(rng.integers(6, 40)))
    elif not glioma and rng.random() < 0.3:
        uncertain = dx("metastasis", "metastatic disease", uncertain=True)
        st.say(b, "rad_indeterminate", uncertain, n=int(rng.integers(3, 7)))
    _negatives(st, b)
    b.start("IMPRESSION")
    st.say(b, "rad_impression", lesion, st.dx(), a=long, line=True)
    if distant:
        b.line("2. Findings compatible with {0}, as described above.", metastatic)
    else:
        b.line("2. No evidence of distant {0}.", metastatic._replace(negated=True))


def _restaging(
    st: Story,
    b: NoteBuilder,
    lesion: Concept,
    metastatic: Concept,
    now: tuple[int, int],
    before: tuple[int, int],
) -> None:
    """Findings and impression of a follow-up study, measured against the prior one."""
    p, ct = st.p, st.cancer
    glioma = p.cancer.key == "glioblastoma"
    distant = p.stage == 4 and not glioma
    st.say(b, "rad_lesion_followup", lesion, a=now[0], s=now[1], pa=before[0], ps=before[1])
    if glioma:
        st.say(b, "rad_edema", dx("vasogenic edema"))
    elif p.stage >= 3:
        st.say(b, "rad_nodes_followup", dx("nodal metastasis"))
    else:
        st.say(b, "rad_no_nodes", neg("lymphadenopathy", "lymphadenopathy"))
    if distant:
        st.say(b, "rad_distant_followup", metastatic, mets=ct.metastases)
    _negatives(st, b)
    b.start("IMPRESSION")
    change = size_change(before[0], now[0])
    pct = round(abs(now[0] - before[0]) / before[0] * 100)
    st.say(b, f"rad_{change}", lesion, a=now[0], pa=before[0], pct=pct, line=True)
    if distant:
        b.line("2. Known {0}, without new sites of disease.", metastatic)
    else:
        b.line("2. No new sites of {0}.", metastatic._replace(negated=True))


def _negatives(st: Story, b: NoteBuilder) -> None:
    """Two pertinent negatives of the study (no effusion, no hydrocephalus, ...)."""
    negatives = st.cancer.negatives
    for i in st.rng.choice(len(negatives), size=2, replace=False):
        st.say(b, "No {0}.", neg(negatives[int(i)], negatives[int(i)]))
