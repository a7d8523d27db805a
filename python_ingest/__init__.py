"""Ingestion jobs: land each modality's raw files as bronze Delta tables, exactly once.

One module per modality (FHIR, VCF/BGEN/PLINK, DICOM, notes, wearables); every record lands or is
quarantined with the file, record and reason. Run with `mmlake ingest`.
"""
