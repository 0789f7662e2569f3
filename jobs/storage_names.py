"""The containers and tables the job types work on: each with the setting that names it.

Declared here, by the job types, so the engine and its settings know no job's storage by name;
the runtime creates them at startup, and tests/infra checks that the template sets each setting.
"""

from __future__ import annotations

from shared.handlers import StorageName, SubjectBlob

DOCUMENTS = StorageName("JOBS_DOCUMENTS_CONTAINER", "documents")  # documents/{tenantId}/{subjectId}
ANALYSIS = StorageName("JOBS_ANALYSIS_CONTAINER", "analysis")  # analysis/{tenantId}/{subjectId}/{type}.json
MAIL = StorageName("JOBS_MAIL_CONTAINER", "mail")  # mail/{tenantId}/{subjectId}.eml (+ .metadata.json)
DOC_INDEX = StorageName("JOBS_INDEX_TABLE", "docindex")  # term rows, partition {tenantId}|doc-{subjectId}

# The subjects callers upload (POST /api/uploads), where the job types read them.
DOCUMENT = SubjectBlob("document", DOCUMENTS, content_type="text/plain; charset=utf-8")
MAIL_MESSAGE = SubjectBlob("mail", MAIL, suffix=".eml", content_type="message/rfc822")
