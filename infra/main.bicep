// Background jobs on Azure Functions (Python, v2 model, Flex Consumption): everything `azd up`
// provisions. Plain Bicep with raw resources (no registry modules), so it builds offline.
// docs/deploy.md walks through it; docs/operations.md is the runbook.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Environment (azd fills these from main.parameters.json)

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and seeds every resource name.')
param environmentName string

// Regions that offer the Flex Consumption plan: the list of the official azd Flex Consumption
// Python sample (Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep at
// 7ed4638) without its canary region eastus2euap (early-access subscriptions only). azd offers
// only these at its prompt, and a wrong AZURE_LOCATION fails the deployment's validation before
// anything is created, instead of failing in provisioning. Flex reaches new regions over time:
// `az functionapp list-flexconsumption-locations` is the live list; add a region here (and in
// tests/infra/test_structure.py) when it shows up there.
@minLength(1)
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@description('Azure region for every resource; it must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group name. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the principal running the deployment. azd fills it (AZURE_PRINCIPAL_ID) with the signed-in account. It becomes the operator (data-plane read/drain roles for the runbook) unless operatorPrincipalId is set. Empty: none.')
param principalId string = ''

// azd substitutes ${AZURE_PRINCIPAL_TYPE} in main.parameters.json with the type of its own
// sign-in: 'ServicePrincipal' after `azd auth login --client-id ...` (CI, federated or secret),
// else 'User'. A role assignment whose principalType does not match the principal fails with
// UnmatchedPrincipalType, so the type must follow the sign-in, never a fixed 'User'.
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principalId: filled by azd from its sign-in (User or ServicePrincipal). Outside azd, pass it with principalId.')
param principalType string = 'User'

@description('Operator other than the deploying principal (e.g. an operations group\'s object id). Empty: principalId.')
param operatorPrincipalId string = ''

@allowed([
  ''
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of operatorPrincipalId (set it together with operatorPrincipalId). Empty: principalType.')
param operatorPrincipalType string = ''

@description('Give the operator its data-plane roles. false: no operator roles at all.')
param enableOperatorRoles bool = true

// ---------------------------------------------------------------------------------------------
// Authentication of callers (validated in code by shared/api/tokens.py)

@minLength(36)
@description('JOBS_AUTH_TENANTS: comma-separated tenant ids (GUIDs) whose tokens are accepted.')
param authTenants string

@minLength(1)
@description('JOBS_AUTH_AUDIENCES: comma-separated accepted audiences: the API app registration\'s client id and/or Application ID URI.')
param authAudiences string

@description('Also put App Service Authentication (Easy Auth) in front of the app, as defense in depth. Off by default; the code validates tokens either way.')
param enableEasyAuth bool = false

@description('Easy Auth: client id of the API\'s app registration (required when enableEasyAuth).')
param easyAuthClientId string = ''

@description('Easy Auth: tenant that issues the tokens. Empty: the subscription\'s tenant.')
param easyAuthTenantId string = ''

// ---------------------------------------------------------------------------------------------
// Hosting

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption instance memory (MB).')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Flex Consumption maximum instance count.')
param maximumInstanceCount int = 100

@description('Zone-redundant plan (needs a region with zones; pair it with storageSkuName Standard_ZRS or Standard_GZRS).')
param zoneRedundant bool = false

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Storage replication.')
param storageSkuName string = 'Standard_LRS'

@description('Send storage resource logs (StorageRead/Write/Delete) to Log Analytics. Off by default: queue polling makes them verbose.')
param enableStorageDiagnostics bool = false

@description('Browser origins allowed by CORS (explicit origins only). Empty: no CORS.')
param corsAllowedOrigins array = []

// ---------------------------------------------------------------------------------------------
// Telemetry

@allowed([
  '1.0'
  '0.5'
  '0.25'
  '0.1'
  '0.05'
  '0.01'
])
@description('OTEL_TRACES_SAMPLER_ARG: share of job traces sent to Application Insights (sampler microsoft.fixed_percentage, whole traces kept or dropped). 1.0: every trace.')
param traceSamplingRatio string = '1.0'

// ---------------------------------------------------------------------------------------------
// The app's settings (defaults = the code's defaults in shared/config.py; docs/configuration.md)

@minLength(3)
@maxLength(56)
@description('JOBS_QUEUE: the jobs queue; <name>-poison is created too (the name leaves room for the suffix).')
param jobsQueueName string = 'jobs'

@minLength(3)
@maxLength(63)
@description('JOBS_OUTCOMES_QUEUE: where JobOutcome events go.')
param outcomesQueueName string = 'job-outcomes'

@minLength(3)
@maxLength(63)
@description('JOBS_TABLE: job status entities and their history rows.')
param jobsTableName string = 'jobs'

@minLength(3)
@maxLength(63)
@description('JOBS_INDEX_TABLE: the doc-index term index.')
param indexTableName string = 'docindex'

@minLength(3)
@maxLength(63)
@description('JOBS_DOCUMENTS_CONTAINER: documents, {tenantId}/{subjectId}.')
param documentsContainerName string = 'documents'

@minLength(3)
@maxLength(63)
@description('JOBS_ANALYSIS_CONTAINER: ai-analyze output.')
param analysisContainerName string = 'analysis'

@minLength(3)
@maxLength(63)
@description('JOBS_MAIL_CONTAINER: e-mails and their metadata.')
param mailContainerName string = 'mail'

@description('JOBS_MAINTENANCE_SCHEDULE: NCRONTAB schedule of the maintenance timer.')
param maintenanceSchedule string = '0 */5 * * * *'

@minValue(1)
@description('JOBS_MAX_PAYLOAD_BYTES: largest serialized job payload.')
param maxPayloadBytes int = 8192

@minValue(1)
@description('JOBS_MAX_REQUEST_BYTES: largest request body.')
param maxRequestBytes int = 65536

@minValue(1)
@description('JOBS_LEASE_SECONDS: a running attempt\'s lease.')
param leaseSeconds int = 300

@minValue(0)
@description('JOBS_RETRY_BASE_SECONDS: first retry delay (doubles per attempt, with jitter).')
param retryBaseSeconds int = 5

@minValue(0)
@description('JOBS_RETRY_MAX_SECONDS: cap on the retry delay.')
param retryMaxSeconds int = 600

@minValue(1)
@maxValue(3600)
@description('JOBS_STATUS_RETRY_AFTER_MAX_SECONDS: cap on the Retry-After derived from each job type\'s typical duration.')
param statusRetryAfterMaxSeconds int = 30

@minValue(1)
@description('JOBS_STRANDED_QUEUED_SECONDS: a Queued job overdue this long is re-sent by maintenance.')
param strandedQueuedSeconds int = 600

@minValue(1)
@description('JOBS_OUTCOME_GRACE_SECONDS: a pending outcome this old is re-sent by maintenance.')
param outcomeGraceSeconds int = 120

@minValue(1)
@description('JOBS_RETENTION_DAYS: terminal jobs older than this are purged.')
param retentionDays int = 30

@minValue(1)
@description('JOBS_MAINTENANCE_BATCH_SIZE: most jobs each maintenance step handles per run.')
param maintenanceBatchSize int = 500

@minValue(1)
@maxValue(604800)
@description('JOBS_DEFER_LIMIT_SECONDS: how long one run may wait (RetryLater) without spending attempts.')
param deferLimitSeconds int = 3600

@minValue(1)
@description('JOBS_MAX_INFLIGHT_PER_PRINCIPAL: most non-terminal jobs one caller may have (429 above).')
param maxInflightPerPrincipal int = 100

@minValue(1)
@description('JOBS_LIST_MAX_PAGE_SIZE: largest page GET /api/jobs returns (larger requests are clamped).')
param listMaxPageSize int = 100

@minValue(0)
@maxValue(10000)
@description('JOBS_STATUS_MAX_WAITERS: long-polling status requests (waitSeconds) one instance holds at once.')
param statusMaxWaiters int = 100

@minValue(-1)
@description('JOBS_OUTCOME_TTL_SECONDS: how long an unread JobOutcome event stays on its queue (-1: never expires).')
param outcomeTtlSeconds int = 604800

@description('JOBS_STORAGE_USE_ENV_PROXY: storage calls honour HTTP(S)_PROXY, NO_PROXY and .netrc (for a host behind a proxy). Off: no lookups per request.')
param storageUseEnvProxy bool = false

@description('JOBS_STORAGE_POOL_SIZE: storage connection pool limit per worker process. Empty: derived from host.json (2 queue functions x (batchSize + newBatchThreshold) + maxConcurrentRequests + 1).')
param storagePoolSize string = ''

// ---------------------------------------------------------------------------------------------
// Alerts

@description('Action group resource id the alerts notify. Empty: alerts fire without actions.')
param alertActionGroupId string = ''

@minValue(1)
@maxValue(100)
@description('Failure ratio alert threshold, percent of outcomes that are Failed or Poisoned.')
param failureRatioThresholdPercent int = 10

@minValue(1)
@description('Failure ratio alert: least outcomes in the window for it to be evaluated.')
param failureRatioMinOutcomes int = 20

// ---------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${resourceToken}'
// The operator who gets the runbook's data-plane roles (none when disabled or unknown).
var operatorId = enableOperatorRoles ? (empty(operatorPrincipalId) ? principalId : operatorPrincipalId) : ''
var operatorType = empty(operatorPrincipalType) ? principalType : operatorPrincipalType
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

// Every setting the code reads (shared/config.py), except the dev-only JOBS_AUTH_JWKS_URI (the
// signing keys come from the tenants' discovery documents in Azure). Storage and telemetry
// settings are added in modules/function-app.bicep. tests/infra checks this list against the code.
var jobsAppSettings = {
  JOBS_QUEUE: jobsQueueName
  JOBS_OUTCOMES_QUEUE: outcomesQueueName
  JOBS_TABLE: jobsTableName
  JOBS_INDEX_TABLE: indexTableName
  JOBS_DOCUMENTS_CONTAINER: documentsContainerName
  JOBS_ANALYSIS_CONTAINER: analysisContainerName
  JOBS_MAIL_CONTAINER: mailContainerName
  JOBS_AUTH_TENANTS: authTenants
  JOBS_AUTH_AUDIENCES: authAudiences
  JOBS_MAINTENANCE_SCHEDULE: maintenanceSchedule
  JOBS_MAX_PAYLOAD_BYTES: string(maxPayloadBytes)
  JOBS_MAX_REQUEST_BYTES: string(maxRequestBytes)
  JOBS_LEASE_SECONDS: string(leaseSeconds)
  JOBS_RETRY_BASE_SECONDS: string(retryBaseSeconds)
  JOBS_RETRY_MAX_SECONDS: string(retryMaxSeconds)
  JOBS_STATUS_RETRY_AFTER_MAX_SECONDS: string(statusRetryAfterMaxSeconds)
  JOBS_STRANDED_QUEUED_SECONDS: string(strandedQueuedSeconds)
  JOBS_OUTCOME_GRACE_SECONDS: string(outcomeGraceSeconds)
  JOBS_RETENTION_DAYS: string(retentionDays)
  JOBS_MAINTENANCE_BATCH_SIZE: string(maintenanceBatchSize)
  JOBS_DEFER_LIMIT_SECONDS: string(deferLimitSeconds)
  JOBS_MAX_INFLIGHT_PER_PRINCIPAL: string(maxInflightPerPrincipal)
  JOBS_LIST_MAX_PAGE_SIZE: string(listMaxPageSize)
  JOBS_STATUS_MAX_WAITERS: string(statusMaxWaiters)
  JOBS_OUTCOME_TTL_SECONDS: string(outcomeTtlSeconds)
  JOBS_STORAGE_USE_ENV_PROXY: string(storageUseEnvProxy)
  JOBS_STORAGE_POOL_SIZE: storagePoolSize
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity './modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring './modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    queueNames: [
      jobsQueueName
      '${jobsQueueName}-poison'
      outcomesQueueName
    ]
    tableNames: [
      jobsTableName
      indexTableName
    ]
    containerNames: [
      documentsContainerName
      analysisContainerName
      mailContainerName
      deploymentContainerName
    ]
    diagnosticsWorkspaceId: enableStorageDiagnostics ? monitoring.outputs.logAnalyticsId : ''
  }
}

module rbac './modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    operatorPrincipalId: operatorId
    operatorPrincipalType: operatorType
  }
}

module functionApp './modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    zoneRedundant: zoneRedundant
    corsAllowedOrigins: corsAllowedOrigins
    traceSamplingRatio: traceSamplingRatio
    appSettings: jobsAppSettings
  }
  // The host starts with the identity's data roles in place (they still take minutes to apply).
  dependsOn: [
    rbac
  ]
}

module easyAuth './modules/easy-auth.bicep' = if (enableEasyAuth) {
  name: 'easy-auth'
  scope: rg
  params: {
    siteName: functionApp.outputs.name
    clientId: easyAuthClientId
    tenantId: !empty(easyAuthTenantId) ? easyAuthTenantId : tenant().tenantId
    // Audiences never contain spaces: drop any around the commas.
    allowedAudiences: split(replace(authAudiences, ' ', ''), ',')
  }
}

module alerts './modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: 'jobs-${resourceToken}'
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    actionGroupId: alertActionGroupId
    failureRatioThresholdPercent: failureRatioThresholdPercent
    failureRatioMinOutcomes: failureRatioMinOutcomes
  }
}

module workbook './modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
  }
}

// azd stores these in .azure/<env>/.env
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output API_BASE_URL string = 'https://${functionApp.outputs.defaultHostName}/api'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsName
output AZURE_WORKBOOK_ID string = workbook.outputs.id
