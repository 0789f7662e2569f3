// The operations workbook: jobs by status and type, durations, attempts, poison and failures,
// and a job's whole story by jobId or correlationId. The definition is the JSON file next to the
// templates (infra/workbooks/jobs.workbook.json, editable in the portal's Advanced Editor and
// pasted back); its queries run against the Application Insights component.

@description('Azure region.')
param location string

@description('Tags for the workbook.')
param tags object = {}

@description('Application Insights component resource id (the workbook\'s data source).')
param applicationInsightsId string

@description('Display name in Azure Monitor > Workbooks.')
param displayName string = 'Background jobs'

var sourceId = toLower(applicationInsightsId)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, sourceId, 'background-jobs-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: sourceId
    // The workbook schema version, as in serializedData's own "version" (not a revision number).
    version: 'Notebook/1.0'
    serializedData: replace(loadTextContent('../workbooks/jobs.workbook.json'), '__APPLICATION_INSIGHTS_ID__', sourceId)
  }
}

output id string = workbook.id
