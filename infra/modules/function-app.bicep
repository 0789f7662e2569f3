// Flex Consumption plan + Linux Python function app, identity-based everything.
// Deprecated on Flex and deliberately NOT set: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENTSHARE, WEBSITE_CONTENTAZUREFILECONNECTIONSTRING,
// SCM_DO_BUILD_DURING_DEPLOYMENT, ENABLE_ORYX_BUILD (the runtime lives in functionAppConfig.runtime).

@description('Function app name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan and the app (the app also gets azd-service-name: api).')
param tags object = {}

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Storage account (same resource group): host storage, app data and the deployment container.')
param storageAccountName string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights component (same resource group).')
param applicationInsightsName string

@allowed([
  512
  2048
  4096
])
@description('Memory per instance (MB): 512 = 0.25 core, 2048 = 1 core, 4096 = 2 cores.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most instances the app scales out to.')
param maximumInstanceCount int = 100

@description('Zone-redundant plan (the region must support it, and storage should be ZRS/GZRS).')
param zoneRedundant bool = false

@description('Browser origins allowed by CORS. Empty (default): no CORS. Never use a wildcard.')
param corsAllowedOrigins array = []

@description('The app\'s own settings (JOBS_*), built in main.bicep from its parameters.')
param appSettings object

// Trace sampling of the Azure Monitor OpenTelemetry distro (azure-monitor-opentelemetry 1.8.x,
// read from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG). Unset, the distro rate-limits to 5
// traces per second per process, so under load whole jobs vanish from the end-to-end view.
// 'microsoft.fixed_percentage' is Application Insights' own sampler: the decision is a hash of
// the trace id, so submit, handler and outcome (one trace id per job, across instances) are kept
// or dropped together, and the kept share is recorded for Application Insights' counts.
@allowed([
  '1.0'
  '0.5'
  '0.25'
  '0.1'
  '0.05'
  '0.01'
])
@description('Share of traces kept (OTEL_TRACES_SAMPLER_ARG of the microsoft.fixed_percentage sampler): 1.0 = every job\'s trace.')
param traceSamplingRatio string = '1.0'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

// Host storage and the app's storage: one identity-based connection, no keys, no connection
// string. shared/store/clients.py follows the host's rules for AzureWebJobsStorage__*.
var platformSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  // shared/observability/traces.py configures the Azure Monitor OpenTelemetry distro from these two (the
  // identity authenticates ingestion). PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY stays unset:
  // the worker would configure a second exporter and every record would be sent twice.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // Sampling, stated instead of the distro's rate-limited default (see traceSamplingRatio).
  OTEL_TRACES_SAMPLER: 'microsoft.fixed_percentage'
  OTEL_TRACES_SAMPLER_ARG: traceSamplingRatio
  // host.json's telemetryMode OpenTelemetry: the host exports OpenTelemetry too, and with this the
  // Python worker joins the host's trace context instead of the host forwarding its logs a second time.
  PYTHON_ENABLE_OPENTELEMETRY: 'true'
}

// siteConfig holds only properties a Flex Consumption site accepts (tests/infra/test_structure.py
// enforces this allowlist). Flex rejects the App Service hosting knobs in siteConfig with ARM
// error 51021 ("site configuration properties ... for Flex Consumption sites is invalid"; older
// regional stamps ignore them, newer ones refuse them, whatever the value). Among them:
// ftpsState, alwaysOn, linuxFxVersion/windowsFxVersion and every *Version runtime stack,
// use32BitWorkerProcess, functionAppScaleLimit, minimumElasticInstanceCount,
// preWarmedInstanceCount. Runtime and scale live in functionAppConfig; FTP is off through the
// 'ftp' basic-publishing-credentials policy below (no credential can sign in). The five kept
// are among those the Flex site config of Terraform's azurerm_function_app_flex_consumption
// resource exposes: minimum TLS, SCM minimum TLS, remote debugging, HTTP/2 and CORS.
resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      remoteDebuggingEnabled: false
      http20Enabled: true
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No basic-auth (publishing profile) deployments: azd and the CLI deploy with Entra tokens.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

// All app settings in one resource: the JOBS_* settings from main.bicep plus the platform ones.
resource appSettingsConfig 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(appSettings, platformSettings)
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
