// Log Analytics workspace + workspace-based Application Insights with local (key) auth off:
// telemetry is accepted only with an Entra token (the app's identity holds Monitoring Metrics
// Publisher on the component, and APPLICATIONINSIGHTS_AUTHENTICATION_STRING names it).

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Azure region.')
param location string

@description('Tags for both resources.')
param tags object = {}

@minValue(30)
@maxValue(730)
@description('Days the workspace keeps data (job stories are searchable this long).')
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

output logAnalyticsId string = logAnalytics.id
output logAnalyticsName string = logAnalytics.name
output applicationInsightsId string = applicationInsights.id
output applicationInsightsName string = applicationInsights.name
// Not a secret: with DisableLocalAuth the instrumentation key alone cannot ingest anything.
output connectionString string = applicationInsights.properties.ConnectionString
