"""What the templates must say: storage and site hardening, identity-only access, least-privilege
roles, monitoring with Entra-only ingestion, alerts and the workbook."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.infra.templates import (
    FLEX_DEPRECATED_SETTINGS,
    INFRA,
    STORAGE_CONNECTION,
    WORKBOOK_JSON,
    bicep_text,
    body,
    condition,
    decorator,
    function_arg,
    main,
    module,
    only_resource,
    parse,
    resources_of_type,
    strip_comments,
    template_app_settings,
)

ROLE = {
    "storage_blob_data_owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storage_queue_data_contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storage_table_data_contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "monitoring_metrics_publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    # the optional operator's roles
    "storage_blob_data_contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storage_queue_data_message_processor": "8a0f0c08-91a1-4084-bc3d-661d67233fed",
    "storage_table_data_reader": "76199698-9eea-4c19-bc75-cec21354c6b6",
}
FORBIDDEN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "f1a07417-d97a-45cb-824c-7a7467783830": "Managed Identity Operator",
}
# siteConfig keys this template may set on a Flex Consumption site, and keys Flex refuses (ARM
# error 51021 on newer stamps). Runtime and scale go in functionAppConfig instead.
FLEX_SITE_CONFIG_ACCEPTED = {"minTlsVersion", "scmMinTlsVersion", "remoteDebuggingEnabled", "http20Enabled", "cors"}
FLEX_SITE_CONFIG_REJECTED = (
    "ftpsState", "alwaysOn", "linuxFxVersion", "windowsFxVersion", "pythonVersion", "javaVersion",
    "netFrameworkVersion", "powerShellVersion", "nodeVersion", "phpVersion", "use32BitWorkerProcess",
    "functionAppScaleLimit", "minimumElasticInstanceCount", "preWarmedInstanceCount",
)
# Flex Consumption regions: the official azd Flex Consumption Python sample's @allowed list
# (Azure-Samples/functions-quickstart-python-http-azd infra/main.bicep, 7ed4638) without its
# canary region eastus2euap. `az functionapp list-flexconsumption-locations` is the live list.
FLEX_REGIONS = [
    "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "centralindia", "centralus",
    "eastasia", "eastus", "eastus2", "francecentral", "germanywestcentral", "italynorth", "japaneast",
    "koreacentral", "northcentralus", "northeurope", "norwayeast", "southafricanorth", "southcentralus",
    "southeastasia", "southindia", "spaincentral", "swedencentral", "uaenorth", "uksouth", "ukwest",
    "westcentralus", "westeurope", "westus", "westus2", "westus3",
]
TRACE_SAMPLING_RATIOS = ["1.0", "0.5", "0.25", "0.1", "0.05", "0.01"]
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def site() -> dict[str, Any]:
    return body(only_resource(module("function-app"), "Microsoft.Web/sites"))


# ------------------------------------------------------------------------------------------- storage


def test_storage_account_is_hardened() -> None:
    account = body(only_resource(module("storage"), "Microsoft.Storage/storageAccounts"))
    props = account["properties"]
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["allowBlobPublicAccess"] is False
    assert props["allowSharedKeyAccess"] is False
    assert props["defaultToOAuthAuthentication"] is True
    assert props["allowCrossTenantReplication"] is False
    assert account["kind"] == "StorageV2"


def test_blob_containers_are_private() -> None:
    containers = resources_of_type(module("storage"), "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert containers
    for declaration in containers.values():
        loop = declaration["config"]
        inner = loop.get("config", loop)
        assert inner["properties"]["publicAccess"] == "None"


def test_template_creates_every_queue_table_and_container_the_app_uses() -> None:
    params = body(main()["modules"]["storage"])["params"]
    settings = main()["variables"]["jobsAppSettings"]["value"]
    queue = settings["JOBS_QUEUE"]
    assert params["queueNames"] == [queue, f"${{{queue}}}-poison", settings["JOBS_OUTCOMES_QUEUE"]]
    assert params["tableNames"] == [settings["JOBS_TABLE"], settings["JOBS_INDEX_TABLE"]]
    assert params["containerNames"] == [
        settings["JOBS_DOCUMENTS_CONTAINER"], settings["JOBS_ANALYSIS_CONTAINER"], settings["JOBS_MAIL_CONTAINER"],
        "deploymentContainerName",
    ]
    storage = module("storage")
    for kind in ("queueServices/queues", "tableServices/tables", "blobServices/containers"):
        assert resources_of_type(storage, f"Microsoft.Storage/storageAccounts/{kind}"), kind


# ------------------------------------------------------------------------------------- function app


def test_flex_consumption_plan() -> None:
    plan = body(only_resource(module("function-app"), "Microsoft.Web/serverfarms"))
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True


def test_site_is_a_hardened_linux_python_function_app() -> None:
    app = site()
    assert app["kind"] == "functionapp,linux"
    props = app["properties"]
    assert props["httpsOnly"] is True
    config = props["siteConfig"]
    assert config["minTlsVersion"] == "1.2"
    assert config["scmMinTlsVersion"] == "1.2"
    assert config["remoteDebuggingEnabled"] is False
    assert config["http20Enabled"] is True
    runtime = props["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "3.11"}
    tags = function_arg(app["tags"], "union")
    assert tags[1] == {"'azd-service-name'": "api"}


def test_site_config_holds_only_what_flex_consumption_accepts() -> None:
    """Flex Consumption refuses App Service hosting knobs in siteConfig (ARM error 51021, newer
    regional stamps; older ones ignore them), whatever their value: a template that sets one
    deploys in some regions and fails in others. The allowlist is the security settings this
    template needs, each offered by the Flex site config (Terraform's
    azurerm_function_app_flex_consumption exposes them); runtime and scale belong in
    functionAppConfig, FTP is off through the publishing-credentials policy."""
    config = site()["properties"]["siteConfig"]
    assert set(config) <= FLEX_SITE_CONFIG_ACCEPTED, sorted(set(config) - FLEX_SITE_CONFIG_ACCEPTED)
    assert {"minTlsVersion", "http20Enabled", "cors"} <= set(config)  # the test sees the real object
    text = strip_comments(bicep_text())
    for name in FLEX_SITE_CONFIG_REJECTED:
        assert not re.search(rf"\b{name}\s*:", text), f"{name} is invalid on Flex Consumption sites"
    # No separate `web` config resource carrying them either.
    for path in INFRA.rglob("*.bicep"):
        for declaration in resources_of_type(parse(path), "Microsoft.Web/sites/config").values():
            assert body(declaration)["name"] != "web", f"{path}: siteConfig goes in the site, Flex-valid keys only"
    # What Flex wants instead of the rejected keys.
    flex = site()["properties"]["functionAppConfig"]
    assert {"runtime", "scaleAndConcurrency", "deployment"} <= set(flex)


def test_ftp_stays_off_without_ftps_state() -> None:
    # ftpsState is gone (Flex refuses it); FTP is still closed: no FTP credential may sign in.
    policies = resources_of_type(module("function-app"), "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    ftp = [body(p) for p in policies.values() if body(p)["name"] == "ftp"]
    assert len(ftp) == 1 and ftp[0]["properties"]["allow"] is False
    assert ftp[0]["parent"] == "site"
    assert "CKV_AZURE_78" in (INFRA / ".checkov.yaml").read_text(), "the ftpsState check needs its skip"


def test_cors_has_no_wildcard_and_defaults_to_no_origins() -> None:
    cors = site()["properties"]["siteConfig"]["cors"]
    assert cors["allowedOrigins"] == "corsAllowedOrigins"
    assert module("function-app")["parameters"]["corsAllowedOrigins"]["default"] == []
    assert main()["parameters"]["corsAllowedOrigins"]["default"] == []
    assert body(main()["modules"]["functionApp"])["params"]["corsAllowedOrigins"] == "corsAllowedOrigins"
    for path in (INFRA / "main.bicep", INFRA / "modules" / "function-app.bicep"):
        assert "'*'" not in strip_comments(path.read_text()), f"{path}: no wildcard origin"


def test_scale_settings_are_bounded_parameters() -> None:
    scale = site()["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale == {"instanceMemoryMB": "instanceMemoryMB", "maximumInstanceCount": "maximumInstanceCount"}
    for template in (module("function-app"), main()):
        memory = template["parameters"]["instanceMemoryMB"]
        assert decorator(memory, "allowed") == [512, 2048, 4096]
        count = template["parameters"]["maximumInstanceCount"]
        assert decorator(count, "min_value") == 40
        assert decorator(count, "max_value") == 1000


def test_deployment_package_uses_the_user_assigned_identity() -> None:
    deployment = site()["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"] == {
        "type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId",
    }
    assert site()["identity"]["type"] == "UserAssigned"


def test_basic_publishing_credentials_are_off() -> None:
    policies = resources_of_type(module("function-app"), "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"] for p in policies.values()} == {"scm", "ftp"}
    assert all(body(p)["properties"]["allow"] is False for p in policies.values())


# ---------------------------------------------------------------------------------- region


def test_location_is_limited_to_flex_consumption_regions() -> None:
    """A region without Flex Consumption must not get past the prompt: azd offers only the
    @allowed values, and ARM refuses any other before creating anything."""
    location = main()["parameters"]["location"]
    allowed = decorator(location, "allowed")
    assert allowed == FLEX_REGIONS, sorted(set(allowed or []) ^ set(FLEX_REGIONS))
    assert len(allowed) == len(set(allowed)) and allowed == sorted(allowed)
    assert "eastus2euap" not in allowed  # canary: early-access subscriptions only
    assert decorator(location, "metadata") == {"azd": {"type": "location"}}
    assert location.get("default") is None, "no default region: azd asks, from the list"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    # Every module is deployed in that one validated region.
    for name, declaration in main()["modules"].items():
        params = body(declaration)["params"]
        if "location" in params:
            assert params["location"] == "location", name


# ------------------------------------------------------------------------- identity-based settings


def test_storage_connection_is_identity_based() -> None:
    settings = template_app_settings()
    assert settings[f"{STORAGE_CONNECTION}__credential"] == "managedidentity"
    assert settings[f"{STORAGE_CONNECTION}__clientId"] == "identityClientId"
    for service in ("blob", "queue", "table"):
        uri = json.dumps(settings[f"{STORAGE_CONNECTION}__{service}ServiceUri"])
        assert "primaryEndpoints" in uri and f'"{service}"' in uri, uri
    assert STORAGE_CONNECTION not in settings, "AzureWebJobsStorage itself would be a connection string"
    assert f"{STORAGE_CONNECTION}__accountName" not in settings


def test_application_insights_uses_entra_auth() -> None:
    settings = template_app_settings()
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    component = body(only_resource(module("monitoring"), "Microsoft.Insights/components"))
    assert component["properties"]["DisableLocalAuth"] is True
    assert component["properties"]["WorkspaceResourceId"]
    assert only_resource(module("monitoring"), "Microsoft.OperationalInsights/workspaces")


def test_no_keys_or_connection_strings_anywhere() -> None:
    text = strip_comments(bicep_text())
    for forbidden in ("AccountKey", "listKeys(", "listkeys(", "listAccountSas", "listServiceSas",
                      "DefaultEndpointsProtocol", "SharedAccessSignature", "primaryKey", "InstrumentationKey="):
        assert forbidden not in text, forbidden
    for setting in template_app_settings():
        if setting != "APPLICATIONINSIGHTS_CONNECTION_STRING":  # with local auth off it cannot ingest alone
            assert "CONNECTION" not in setting.upper(), setting


def test_no_setting_deprecated_on_flex() -> None:
    settings = set(template_app_settings())
    assert not settings & FLEX_DEPRECATED_SETTINGS
    text = strip_comments(bicep_text())
    for setting in FLEX_DEPRECATED_SETTINGS:
        assert setting not in text, setting


# ------------------------------------------------------------------------------------------- roles


def role_assignments() -> dict[str, dict[str, Any]]:
    return resources_of_type(module("rbac"), "Microsoft.Authorization/roleAssignments")


def role_id(assignment: dict[str, Any]) -> str:
    roles = module("rbac")["variables"]["roles"]["value"]
    resource_name = body(assignment)["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    accessor = resource_name["operator"]["operands"]
    assert accessor["operand_1"] == "roles"
    return str(roles[accessor["operand_2"]])


def test_app_identity_gets_exactly_the_data_roles_the_code_needs() -> None:
    granted: dict[str, str] = {}
    for name, assignment in role_assignments().items():
        config = body(assignment)
        if config["properties"]["principalId"] != "appPrincipalId":
            continue
        assert condition(assignment) is None, f"{name}: the app's roles are unconditional"
        assert config["properties"]["principalType"] == "ServicePrincipal", name
        assert function_arg(config["name"], "guid") is not None, f"{name}: name must be guid(...)"
        granted[role_id(assignment)] = config["scope"]
    assert granted == {
        ROLE["storage_blob_data_owner"]: "storage",  # blob (app containers + host storage + deployment package)
        ROLE["storage_queue_data_contributor"]: "storage",  # queue
        ROLE["storage_table_data_contributor"]: "storage",  # table
        ROLE["monitoring_metrics_publisher"]: "applicationInsights",
    }


def test_operator_roles_are_optional_and_read_or_process_only() -> None:
    for name, assignment in role_assignments().items():
        config = body(assignment)
        if config["properties"]["principalId"] == "appPrincipalId":
            continue
        assert config["properties"]["principalId"] == "operatorPrincipalId", name
        assert condition(assignment) is not None, f"{name} must depend on a principal id being given"
        assert role_id(assignment) in {
            ROLE["storage_blob_data_contributor"], ROLE["storage_queue_data_message_processor"],
            ROLE["storage_table_data_reader"],
        }, name
        assert function_arg(config["name"], "guid") is not None, name


def test_operator_principal_type_follows_the_sign_in() -> None:
    """A role assignment whose principalType does not match the principal fails
    (UnmatchedPrincipalType): a CI run signed in as a service principal must not be assigned as
    a User. azd substitutes ${AZURE_PRINCIPAL_TYPE} with its sign-in's type; overrides exist for
    another operator (e.g. a group) and for none."""
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert values["principalType"]["value"].startswith("${AZURE_PRINCIPAL_TYPE")
    assert values["operatorPrincipalId"]["value"] == "${OPERATOR_PRINCIPAL_ID=}"
    assert values["operatorPrincipalType"]["value"] == "${OPERATOR_PRINCIPAL_TYPE=}"
    assert values["enableOperatorRoles"]["value"] == "${OPERATOR_ROLES_ENABLED=true}"
    parameters = main()["parameters"]
    assert decorator(parameters["principalType"], "allowed") == ["User", "Group", "ServicePrincipal"]
    assert decorator(parameters["operatorPrincipalType"], "allowed") == ["", "User", "Group", "ServicePrincipal"]
    assert parameters["operatorPrincipalId"]["default"] == "" and parameters["operatorPrincipalType"]["default"] == ""
    assert parameters["enableOperatorRoles"]["default"] is True
    variables = main()["variables"]
    kind = variables["operatorType"]["value"]["operator"]
    assert kind["type"] == "conditional"
    assert kind["operands"]["true_value"] == "principalType"
    assert kind["operands"]["false_value"] == "operatorPrincipalType"
    who = variables["operatorId"]["value"]["operator"]["operands"]
    assert who["condition"] == "enableOperatorRoles" and who["false_value"] == ""
    assert who["true_value"]["operator"]["operands"]["true_value"] == "principalId"
    assert who["true_value"]["operator"]["operands"]["false_value"] == "operatorPrincipalId"
    params = body(main()["modules"]["rbac"])["params"]
    assert params["operatorPrincipalId"] == "operatorId" and params["operatorPrincipalType"] == "operatorType"
    # The module cannot fall back to a fixed kind, and every operator assignment uses the parameter.
    assert module("rbac")["parameters"]["operatorPrincipalType"].get("default") is None
    for name, assignment in role_assignments().items():
        props = body(assignment)["properties"]
        if props["principalId"] == "operatorPrincipalId":
            assert props["principalType"] == "operatorPrincipalType", name


def test_no_broad_role_anywhere() -> None:
    guids = {g.lower() for g in GUID.findall(bicep_text())}
    assert not guids & set(FORBIDDEN_ROLES), {FORBIDDEN_ROLES[g] for g in guids & set(FORBIDDEN_ROLES)}
    assert guids <= set(ROLE.values()), guids - set(ROLE.values())
    # Role assignments live in one module only.
    for path in INFRA.rglob("*.bicep"):
        if path.name != "rbac.bicep":
            assert "Microsoft.Authorization/roleAssignments" not in path.read_text(), path


# ------------------------------------------------------------------------------------ Easy Auth


def test_easy_auth_is_optional_and_off_by_default() -> None:
    params = main()["parameters"]
    assert params["enableEasyAuth"]["default"] is False
    declaration = main()["modules"]["easyAuth"]
    assert condition(declaration) == "enableEasyAuth"
    easy = module("easy-auth")
    for name in ("clientId", "tenantId"):
        assert decorator(easy["parameters"][name], "min_length") == 36, f"{name} must be required when enabled"
    auth = body(only_resource(easy, "Microsoft.Web/sites/config"))
    assert auth["name"] == "authsettingsV2"
    props = auth["properties"]
    assert props["platform"]["enabled"] is True
    assert props["globalValidation"]["requireAuthentication"] is True
    assert props["globalValidation"]["unauthenticatedClientAction"] == "Return401"
    assert props["identityProviders"]["azureActiveDirectory"]["registration"]["clientId"] == "clientId"


# ------------------------------------------------------------------------------- trace sampling


def test_trace_sampling_is_a_stated_setting_keeping_whole_traces() -> None:
    """Unset, the Azure Monitor distro samples at 5 traces per second per process (its
    rate-limited sampler): under load whole jobs vanish from the end-to-end view. The template
    states the sampler (Application Insights' fixed-percentage sampler: one decision per trace id,
    so a job's submit, handler and outcome are kept or dropped together) and its ratio, default
    every trace. tests/telemetry checks what the distro makes of these two settings."""
    settings = template_app_settings()
    assert settings["OTEL_TRACES_SAMPLER"] == "microsoft.fixed_percentage"
    assert settings["OTEL_TRACES_SAMPLER_ARG"] == "traceSamplingRatio"
    for template in (main(), module("function-app")):
        ratio = template["parameters"]["traceSamplingRatio"]
        assert ratio["type"] == "string" and ratio["default"] == "1.0"
        allowed = decorator(ratio, "allowed")
        assert allowed == TRACE_SAMPLING_RATIOS, allowed
        assert all(0.0 < float(value) <= 1.0 for value in allowed)
    assert body(main()["modules"]["functionApp"])["params"]["traceSamplingRatio"] == "traceSamplingRatio"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["traceSamplingRatio"]["value"] == "${TRACE_SAMPLING_RATIO=1.0}"


# ---------------------------------------------------------------------------- alerts and workbook


def test_alerts_cover_poison_failures_and_stranded_jobs() -> None:
    rules = resources_of_type(module("alerts"), "Microsoft.Insights/scheduledQueryRules")
    assert len(rules) == 4
    variables = module("alerts")["variables"]
    queries = {name: str(v["value"]) for name, v in variables.items() if name.endswith("Query")}
    assert 'customDimensions.outcome) == "Poisoned"' in queries["poisonedQuery"]
    assert 'outcome in ("Failed", "Poisoned")' in queries["failureRatioQuery"]
    assert "re-enqueued a stranded Queued job" in queries["strandedQuery"]
    assert 'name == "poison_job"' in queries["poisonQueueQuery"]
    for rule in rules.values():
        props = body(rule)["properties"]
        assert props["actions"] == "actions"
        assert props["scopes"] == ["applicationInsightsId"]
    assert module("alerts")["parameters"]["actionGroupId"]["default"] == ""
    assert main()["parameters"]["alertActionGroupId"]["default"] == ""
    threshold = json.dumps(body(rules["failureRatioAlert"])["properties"]["criteria"])
    assert "failureRatioThresholdPercent" in threshold


def test_workbook_is_loaded_from_its_json_and_searches_by_job_and_correlation() -> None:
    workbook = body(only_resource(module("workbook"), "Microsoft.Insights/workbooks"))
    serialized = json.dumps(workbook["properties"]["serializedData"])
    assert "loadTextContent" in serialized or "load_text_content" in serialized
    assert "jobs.workbook.json" in serialized and "__APPLICATION_INSIGHTS_ID__" in serialized
    document = json.loads(WORKBOOK_JSON.read_text())
    assert document["version"] == "Notebook/1.0"
    # properties.version is the workbook schema version and matches serializedData's own.
    assert workbook["properties"]["version"] == document["version"]
    assert document["fallbackResourceIds"] == ["__APPLICATION_INSIGHTS_ID__"]
    parameters = [p["name"] for item in document["items"] if item["type"] == 9 for p in item["content"]["parameters"]]
    assert {"TimeRange", "JobId", "CorrelationId"} <= set(parameters)
    queries = "\n".join(item["content"]["query"] for item in document["items"] if item["type"] == 3)
    dimensions = ("jobId", "jobType", "correlationId", "attempt", "outcome", "durationMs", "eventId", "queueWaitMs")
    for dimension in dimensions:
        assert f"customDimensions.{dimension}" in queries, dimension
    assert "{JobId}" in queries and "{CorrelationId}" in queries
