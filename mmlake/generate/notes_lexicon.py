"""The data tables behind the synthetic clinical notes: lexicons, phrase banks, drugs, cancers.

Pure data, no randomness. The tables are small pipe-separated blocks (parsed once at import) so
that the variety a note-NLP pipeline has to cope with (synonyms, assertion cues, date formats,
dosing styles) is easy to read and extend. :mod:`mmlake.generate.notes_templates` turns them into
sentences.
"""

from __future__ import annotations

from typing import NamedTuple


def _table(block: str) -> list[list[str]]:
    """Rows of an ``a | b | c`` block; a line opening with ``|`` continues the row above."""
    rows: list[list[str]] = []
    for line in _lines(block):
        cells = [cell.strip() for cell in line.split("|")]
        if line.startswith("|"):  # a continuation of the row above
            rows[-1].extend(cells[1:])
        elif not line.startswith("#"):
            rows.append(cells)
    return rows


def _lines(block: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in block.strip().splitlines() if line.strip())


def _bank(block: str) -> dict[str, tuple[str, ...]]:
    """Named lists of alternatives: ``[name]``, then options separated by ``|`` over lines."""
    bank: dict[str, str] = {}
    name = ""
    for line in _lines(block):
        if line.startswith("["):
            name, _, line = line[1:].partition("]")
            bank[name] = ""
        if not line.startswith("#"):
            bank[name] += " " + line
    return {k: tuple(o.strip() for o in v.split("|") if o.strip()) for k, v in bank.items()}


def split_list(items: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in items.split(","))


class Symptom(NamedTuple):
    concept: str
    favoured_by: frozenset[str]  # cancer keys in which it is a typical presenting complaint
    surfaces: tuple[str, ...]


# The symptom lexicon: the planted signal (affirmed symptoms) and the distractors are all drawn
# from it, so an extractor that ignores assertion status over-counts.
SYMPTOMS: tuple[Symptom, ...] = tuple(
    Symptom(c, frozenset(f.split()), tuple(s.strip() for s in syn.split(";")))
    for c, f, syn in _table("""
dyspnea | nsclc breast | shortness of breath; dyspnea; breathlessness; dyspnea on exertion
fatigue | - | fatigue; tiredness; low energy; generalized fatigue
cough | nsclc | cough; persistent cough; nonproductive cough; productive cough
hemoptysis | nsclc | hemoptysis; blood-streaked sputum; coughing up blood
weight loss | colorectal nsclc | weight loss; unintentional weight loss; unintended weight loss
anorexia | colorectal | anorexia; decreased appetite; poor appetite; loss of appetite
nausea | glioblastoma | nausea; intermittent nausea; queasiness
vomiting | glioblastoma | vomiting; emesis
headache | glioblastoma | headache; headaches; morning headaches
seizure | glioblastoma | seizure; seizures; focal seizure; generalized tonic-clonic seizure
bone pain | breast nsclc | bone pain; aching bone pain; diffuse bone pain
abdominal pain | colorectal | abdominal pain; abdominal cramping; lower abdominal pain
night sweats | melanoma | night sweats; drenching night sweats
chest pain | nsclc | chest pain; chest discomfort; pleuritic chest pain
dizziness | - | dizziness; lightheadedness
blurred vision | glioblastoma | blurred vision; blurry vision; visual blurring
fever | - | fever; fevers; low-grade fevers
chills | - | chills; rigors
confusion | glioblastoma | confusion; intermittent confusion; disorientation
constipation | colorectal | constipation
diarrhea | colorectal | diarrhea; loose stools
rectal bleeding | colorectal | rectal bleeding; blood in the stool; hematochezia
neuropathy | - | neuropathy; peripheral neuropathy; numbness and tingling in the fingertips
insomnia | - | insomnia; difficulty sleeping
pruritus | melanoma | pruritus; itching
hoarseness | nsclc | hoarseness
weakness | glioblastoma | weakness; generalized weakness; left-sided weakness
""")
)
SYMPTOM_BY_CONCEPT = {s.concept: s for s in SYMPTOMS}
# Lexicon symptoms that consent discussions list as treatment side effects.
SIDE_EFFECTS = frozenset(
    split_list("nausea, vomiting, diarrhea, constipation, fatigue, neuropathy, pruritus, anorexia")
)

# Phrase bank: ``[name]`` then alternatives separated by ``|``, over as many lines as needed.
# {0} and {1} are concept slots (their surfaces are logged); other slots: {P} subject, {p} pronoun,
# {dur} duration, {year}, {name}, {age}, {sexword}, {stage}, {date}, {dose}, {scan}, {site}, {mm}
# (radiology: {a} x {s} lesion axes in mm, prior {pa} x {ps}, {pct}, {acc} accession number).
PHRASES: dict[str, tuple[str, ...]] = _bank("""
[affirmed_new]
{P} reports {0} for the past {dur}. | {P} endorses {0}. | {P} has noticed {0} over the last {dur}.
| Notable for {0}, which began about {dur} ago. | {P} complains of progressive {0}.
| Describes {0} that has been worsening over {dur}. | {P} has been experiencing {0}.
| Also reports {0}. | {0} has been a significant problem over the past {dur}.
| {P} first developed {0} roughly {dur} ago.
[affirmed_followup]
Continues to have {0}. | Ongoing {0}, overall unchanged. | {P} endorses {0} this week.
| Reports mild {0}. | {0} persists, although tolerable. | Still bothered by {0}.
[negated_one]
Denies {0}. | Negative for {0}. | {P} has not had any {0}. | No {0}. | Does not report {0}.
| No recent {0}.
[negated_two] {P} denies {0} or {1}. | No {0} or {1}. | Negative for {0} and {1}. | No {0}, no {1}.
# Mixed frames put a negated and an affirmed concept in one sentence, split by a ConText terminator.
[mixed] Denies {0} but does endorse {1}. | No {0}; however, {p} does report {1}.
[uncertain] Possible early {0}; will monitor. | Cannot rule out {0}.
| Episode last week of ? {0}; details unclear. | Questionable {0} reported by family.
| {P} describes what may be {0}, although this is not clear. | Unclear whether {0} is present.
| Suspected {0}, to be reassessed at the next visit. | Concern for possible {0}.
[hypothetical] Return to the ED for any {0}. | Should {p} develop {0}, {p} will call the clinic.
| Instructed to call for any {0}. | If {0} occurs, hold the next dose and call the triage line.
| Precautions reviewed: call for {0} or {1}.
[side_effects] We discussed potential side effects, including {0} and {1}.
| Reviewed expected toxicities such as {0} and {1}.
[historical_symptom]
Remote history of {0} in {year}, resolved. | Had {0} in {year} that resolved without treatment.
[family]
{R} had {0}. | {R} with {0}, diagnosed at age {age}. | {R} was diagnosed with {0} in {h} {decade}s.
[family_none] No family history of {0}. | Negative for {0} in first-degree relatives.
[ecog] ECOG {v} | ECOG performance status of {v} | ECOG PS: {v} | ECOG PS {v}
| ECOG performance status is {v}
[ecog_sentence] {0}. | Performance status: {0}. | {0}, {meaning}.
[consult_cc] New diagnosis of {0}. | Evaluation of newly diagnosed {0}. | {0}, new diagnosis.
[asymptomatic] {P} has been largely asymptomatic. | {P} feels generally well.
| The lesion was found on imaging obtained for another reason.
[biopsy] {P} underwent {0} of the {site} on {date}, which showed {1}.
| {0} of the {site} performed on {date} revealed {1}.
| Pathology from the {0} on {date} confirmed {1}.
[staging] Staging {scan} on {date} showed the primary lesion measuring {mm} mm.
| {scan} obtained on {date} for staging demonstrated a {mm} mm primary lesion.
[driver_found] Molecular profiling identified {0}. | Next-generation sequencing revealed {0}.
| Tumor genotyping is notable for {0}.
[driver_none] Next-generation sequencing showed no {0}. | Molecular testing was negative for {0}.
[driver_pending] Molecular testing has been sent.
| Tissue was sent for next-generation sequencing; results are pending.
[allergies] No known {0}. | Allergies reviewed; no known {0}.
[ros_positive] Positive for {0}. | Endorses {0}. | ROS is notable for {0}.
[ros_close]
All other systems reviewed and negative. | A complete review of systems is otherwise negative.
| Remainder of the 12-point review of systems is negative.
[consult_ap] {age}-year-old {sexword} with {stage} {0}. | Newly diagnosed {stage} {0}.
[plan_start] Plan to start {regimen} on {date}. | We recommend {regimen}, to begin on {date}.
| Will start {regimen} on {date} pending insurance authorization.
[targeted_rationale] Given {driver}, {drugs} will be added once insurance approval is obtained.
| With {driver} detected, we will add targeted therapy with {drugs}.
[follow_up] Return to clinic in {n} weeks. | Follow up in {n} weeks with labs. | RTC {n} weeks.
[contact] Best contact number confirmed as {phone}. | {P} can be reached at {phone}.
[progress_cc]
Follow-up of {0} on treatment. | Scheduled follow-up for {0}. | {0}, routine follow-up.
[progress_open] {name} returns for follow-up of {stage} {0}.
| {name} is seen today for continued management of {0}.
[started]
Started {0} {dose} on {date}. | {0} {dose} was started on {date}. | Began {0} {dose} on {date}.
[continuing]
Continues {0} {dose}. | Currently on {0}, tolerating it reasonably well. | Remains on {0}.
[feels_well] {P} feels well overall. | Doing well since the last visit. | No new complaints today.
[progressive disease] Restaging {scan} on {date} shows {0}, with the target lesion now {mm} mm.
| Unfortunately, {scan} from {date} demonstrates {0}.
| Imaging on {date} is consistent with {0}; the target lesion has grown to {mm} mm.
[stable disease]
Restaging {scan} on {date} shows {0}. | {scan} from {date} is consistent with {0} per {criteria}.
| {0} on the most recent imaging ({date}).
[partial response]
Restaging {scan} on {date} demonstrates a {0}, with the target lesion down to {mm} mm.
| Imaging from {date} shows a {0} per {criteria}.
[continue] Continue current therapy. | Proceed with treatment as planned.
[stopped] {0} discontinued on {date} given progression. | Stopped {0} on {date}.
[no_next_line] Discussed second-line options, including referral for clinical trial evaluation.
| Goals of care discussed; will review second-line options at the next visit.
[dose_reduced]
{0} dose reduced to {dose} on {date} for {1}. | Due to {1}, {0} was reduced to {dose} on {date}.
[held] {0} held for {1}; will resume once it resolves.
| {0} was held on {date} because of {1}; plan to resume at the next cycle.
[general] General: Well-appearing, in no acute distress. | General: Alert, cooperative, no distress.
| General: Thin, chronically ill-appearing.
[lungs]
Lungs: Clear to auscultation bilaterally. | Lungs: Diminished breath sounds at the right base.
[lymph] Lymph: No cervical or supraclavicular {0}. | Lymph: No palpable {0}.
[occupation] Retired teacher. | Works as an accountant. | Retired electrician. | Works in retail.
| Retired nurse. | Self-employed contractor.
[home] Lives with spouse. | Lives alone. | Lives with daughter and her family.
[alcohol] Drinks socially. | One or two glasses of wine per week.
[gbm_plan] {1} to 60 Gy in 30 fractions with concurrent {0} 75 mg/m2 daily
[gbm_started] {1} with concurrent {0} 75 mg/m2 daily started on {date}; adjuvant dosing will be
{dose}.
[path_history] {age}-year-old {sexword} with a {site} lesion; {0} performed on {date}.
[path_gross] Received in formalin, labeled with the patient's name and medical record number
({mrn}), are {pieces}, measuring {size} cm in aggregate.
[squamous] Tumor cells are positive for p40 and negative for TTF-1.
[molecular_found] {0} detected ({hgvs}), variant allele fraction {vaf}%.
[molecular_none] Not performed on this specimen. | Pending; an addendum will follow.
[rad_history] Staging of newly diagnosed {0}. | Initial staging, {0}.
[technique_ct] Helical CT images were obtained after administration of {n} mL of iodinated
intravenous contrast. Multiplanar reformats were reviewed.
[technique_mr] Multiplanar multisequence MR images of the brain were obtained before and after
administration of {n} mL of gadolinium-based contrast.
[comparison] None. | None available. | Outside imaging is not available for comparison.
[rad_lesion] There is a {a} x {s} mm {0}. | The {0} measures {a} x {s} mm.
[rad_edema] Surrounding T2/FLAIR hyperintensity is consistent with {0}.
[rad_nodes] Enlarged regional lymph nodes, the largest {n} mm in short axis, consistent with {0}.
[rad_no_nodes] No {0} by size criteria. | No pathologically enlarged {0}.
[rad_distant] Multiple {mets}, the largest {n} mm, consistent with {0}.
[rad_indeterminate] A {n} mm indeterminate nodule; {0} cannot be excluded.
| {n} mm nonspecific nodule, possibly representing {0}.
[rad_impression] 1. {a} mm {0}, compatible with the known {1}.
# Restaging reports: {a} x {s} mm now, {pa} x {ps} mm on the prior study, {acc} its accession.
[rad_history_restaging] Restaging of {0} on treatment.
| Follow-up of {0}; assess treatment response.
[rad_comparison] {scan} dated {date} (accession {acc}). | Prior {scan} from {date}, accession {acc}.
[rad_lesion_followup] The {0} now measures {a} x {s} mm, previously {pa} x {ps} mm.
| The {0} measures {a} x {s} mm (previously {pa} x {ps} mm).
[rad_nodes_followup] Regional lymph nodes compatible with {0} are not significantly changed.
[rad_distant_followup] The previously described {mets}, consistent with {0}, are not significantly
changed.
# The impression words the change of the longest diameter ({pct}% of the prior {pa} mm).
[rad_stable] 1. No significant interval change in the {0}, now {a} mm (previously {pa} mm).
| 1. Stable {0}, {a} mm (previously {pa} mm).
[rad_larger] 1. Interval increase in size of the {0}, now {a} mm from {pa} mm ({pct}% larger).
| 1. The {0} has enlarged from {pa} mm to {a} mm ({pct}%).
[rad_smaller] 1. Interval decrease in size of the {0}, now {a} mm from {pa} mm ({pct}% smaller).
| 1. The {0} has decreased from {pa} mm to {a} mm ({pct}%).
""")
DURATIONS = split_list("2 weeks, 3 weeks, several weeks, 1 month, 6 weeks, 2 months, 3 months")

# Chronic comorbidities (current, so affirmed) with the home medication that goes with them.
COMORBIDITIES = _table("""
hypertension | hypertension | lisinopril | 10 mg orally once daily
type 2 diabetes mellitus | type 2 diabetes | metformin | 500 mg orally twice daily
hyperlipidemia | hyperlipidemia | atorvastatin | 20 mg orally at bedtime
hypothyroidism | hypothyroidism | levothyroxine | 75 mcg orally once daily
gastroesophageal reflux disease | GERD | omeprazole | 20 mg orally once daily
chronic obstructive pulmonary disease | COPD | tiotropium | 18 mcg inhaled once daily
atrial fibrillation | atrial fibrillation | apixaban | 5 mg orally twice daily
osteoarthritis | osteoarthritis | acetaminophen | 500 mg orally twice daily
""")
# Resolved past events: concept | category | surface | frame ({0} = surface).
HISTORICAL_EVENTS = _table("""
pneumonia | diagnosis | pneumonia | History of {0} in {year}.
deep vein thrombosis | diagnosis | DVT | Prior {0} in {year}, completed anticoagulation.
appendectomy | procedure | appendectomy | Status post {0} in {year}.
kidney stones | diagnosis | kidney stones | Remote history of {0}.
cholecystectomy | procedure | cholecystectomy | Laparoscopic {0} in {year}.
hepatitis a | diagnosis | hepatitis A | History of {0} as a young adult.
knee replacement | procedure | right knee replacement | Prior {0} in {year}.
""")
FAMILY_CONDITIONS = split_list(
    "breast cancer, colon cancer, lung cancer, prostate cancer, ovarian cancer, melanoma, "
    "type 2 diabetes, coronary artery disease, stroke"
)
RELATIVES = split_list(
    "Mother, Father, Sister, Brother, Maternal aunt, Paternal uncle, Maternal grandmother, "
    "Paternal grandfather"
)

ECOG_MEANING = (
    "fully active without restriction",
    "restricted in strenuous activity but ambulatory and able to do light work",
    "ambulatory and capable of self-care but unable to work",
    "capable of only limited self-care, in bed or chair more than half of waking hours",
    "completely disabled and confined to bed or chair",
)

# name | kind | dose as started | reduced dose (- = none) | dose-limiting toxicities.
# Toxicities are deliberately diagnoses, not lexicon symptoms, so they never blur the signal.
DRUGS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    r[0]: (r[1], r[2], r[3], tuple(t.strip() for t in r[4].split(";")))
    for r in _table("""
osimertinib | targeted | 80 mg orally once daily | 40 mg daily | QTc prolongation; neutropenia
sotorasib | targeted | 960 mg orally once daily | 480 mg daily | elevated transaminases
dabrafenib | targeted | 150 mg orally twice daily | 100 mg twice daily | elevated transaminases
trametinib | targeted | 2 mg orally once daily | 1.5 mg daily | elevated transaminases
encorafenib | targeted | 300 mg orally once daily | 225 mg daily | elevated transaminases
alpelisib | targeted | 300 mg orally once daily | 250 mg daily | hyperglycemia
carboplatin | chemo | AUC 5 IV every 21 days | AUC 4 | neutropenia; thrombocytopenia
pemetrexed | chemo | 500 mg/m2 IV every 21 days | 375 mg/m2 | neutropenia; acute kidney injury
pembrolizumab | immunotherapy | 200 mg IV every 21 days | - | pneumonitis; immune-related hepatitis
nivolumab | immunotherapy | 480 mg IV every 28 days | - | colitis; immune-related hepatitis
paclitaxel | chemo | 80 mg/m2 IV weekly | 65 mg/m2 weekly | neutropenia
letrozole | endocrine | 2.5 mg orally once daily | - | osteopenia
oxaliplatin | chemo | 85 mg/m2 IV every 14 days | 65 mg/m2 | thrombocytopenia
fluorouracil | chemo | 2400 mg/m2 over 46 hours every 14 days | 1920 mg/m2 | neutropenia; mucositis
temozolomide | chemo | 150 mg/m2 on days 1-5 of each 28-day cycle | 100 mg/m2 | thrombocytopenia
""")
}

# Fictional clinicians (no overlap with the patient name pools, so PHI scrubbing is testable).
CLINICIAN_FIRST = split_list(
    "Alan, Beatrice, Conrad, Delphine, Edmund, Felicity, Gideon, Harriet, Isidore, Josephine, "
    "Leopold, Marguerite, Nikolai, Ophelia, Percival, Rosalind"
)
CLINICIAN_LAST = split_list(
    "Abernathy, Blackwood, Castellanos, Drummond, Everly, Fairbanks, Hollister, Iversen, Kendrick, "
    "Lindqvist, Marchetti, Northcott, Pemberton, Quintero, Radcliffe, Whitaker"
)


class CancerText(NamedTuple):
    """How a cancer type is written about, from the biopsy to the staging scan."""

    names: tuple[str, ...]  # the first is the normalized concept
    sites: tuple[str, ...]
    biopsy: tuple[str, ...]  # (normalized concept, surface)
    histology: tuple[str, ...]  # (normalized concept, surface)
    exam: str  # staging study as the radiology report titles it
    scan: str  # the same study in running text
    lesion: str  # primary lesion as radiology describes it ({site} slot)
    genes: tuple[str, ...]  # genes the hotspot panel reports for this tumour type
    pieces: str  # what the pathology lab receives ({n} slot)
    microscopy: str  # morphology and immunohistochemistry
    markers: str  # the tumour-type specific line ({pct}, {grade}, {depth} slots)
    negatives: tuple[str, ...]  # pertinent negatives of the staging study
    metastases: str  # how distant disease shows on that study


_LISTS = {0, 1, 2, 3, 7, 11}  # CancerText fields written as "; "-separated lists
CANCER_TEXT: dict[str, CancerText] = {
    row[0]: CancerText(*(tuple(c.split("; ")) if i in _LISTS else c for i, c in enumerate(row[1:])))
    for row in _table("""
nsclc | non-small cell lung cancer; NSCLC
| right upper lobe; left upper lobe; right lower lobe; left lower lobe
| ct-guided lung biopsy; CT-guided core needle biopsy | adenocarcinoma; adenocarcinoma
| CT CHEST WITH IV CONTRAST | CT of the chest | spiculated mass in the {site}
| EGFR; KRAS; BRAF; ALK | {n} core biopsies
| Tumor cells are positive for TTF-1 and napsin A and negative for p40.
| PD-L1 (22C3) tumor proportion score: {pct}%.
| pleural effusion; pericardial effusion; pneumothorax | bilateral pulmonary nodules
breast | breast cancer; carcinoma of the breast | left breast; right breast
| breast core needle biopsy; ultrasound-guided core needle biopsy
| invasive ductal carcinoma; invasive ductal carcinoma
| CT CHEST WITH IV CONTRAST | CT of the chest | irregular enhancing mass in the {site}
| PIK3CA; ERBB2; ESR1 | {n} core biopsies
| Infiltrating nests and cords of malignant epithelial cells with desmoplastic stroma.
| Nottingham grade {grade}; ER positive ({pct}%), PR positive, HER2 negative (IHC 1+).
| pleural effusion; pericardial effusion; pneumothorax | sclerotic osseous lesions
colorectal | colon cancer; adenocarcinoma of the colon
| sigmoid colon; ascending colon; descending colon; transverse colon; cecum
| colonoscopy with biopsy; colonoscopic biopsy | adenocarcinoma; invasive adenocarcinoma
| CT ABDOMEN AND PELVIS WITH IV CONTRAST | CT of the abdomen and pelvis
| circumferential mass of the {site} | KRAS; NRAS; BRAF | {n} tan-pink mucosal fragments
| Malignant glands with cribriform architecture and dirty necrosis invade the submucosa.
| Moderately differentiated; mismatch repair proteins MLH1, PMS2, MSH2 and MSH6 are intact.
| ascites; bowel obstruction; hydronephrosis | hypoattenuating hepatic lesions
melanoma | melanoma; cutaneous melanoma
| left upper back; right forearm; scalp; left calf; right shoulder
| excisional skin biopsy; excisional biopsy | melanoma; invasive melanoma
| CT CHEST WITH IV CONTRAST | CT of the chest
| enlarged regional nodal mass draining the {site} primary | BRAF; NRAS; KIT
| an ellipse of skin with {n} pigmented lesion(s)
| Atypical melanocytes in nests and single cells, with pagetoid spread and dermal invasion.
| Breslow thickness {depth} mm; mitotic rate {grade}/mm2.
| pleural effusion; pericardial effusion; pneumothorax | bilateral pulmonary nodules
glioblastoma | glioblastoma; GBM
| right temporal lobe; left frontal lobe; right parietal lobe; left temporal lobe
| craniotomy with tumor resection; craniotomy with subtotal resection
| glioblastoma; glioblastoma, CNS WHO grade 4
| MRI BRAIN WITH AND WITHOUT CONTRAST | MRI of the brain
| heterogeneously enhancing mass in the {site} with central necrosis | IDH1; IDH2
| {n} fragments of soft gray-tan tissue
| Hypercellular astrocytic neoplasm with microvascular proliferation and palisading necrosis.
| MGMT promoter methylation status to follow.
| hydrocephalus; acute intracranial hemorrhage; midline shift | additional enhancing foci
""")
}

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
SUBSTAGE = {1: ("A", "B"), 2: ("A", "B"), 3: ("A", "B", "C"), 4: ("A", "B")}
