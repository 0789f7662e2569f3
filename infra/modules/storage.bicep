// The one storage account: Functions host storage, the app's queues, tables and blob containers,
// and the Flex Consumption deployment package container. No keys: shared-key access is off, so
// every client (host, app, people) authenticates with Entra ID and needs a data-plane role.

@minLength(3)
@maxLength(24)
@description('Storage account name (3-24 lowercase letters and digits).')
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object = {}

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Replication. LRS keeps 3 copies in one datacenter; ZRS/GZRS survive a zone (pick them where the region has zones).')
param skuName string = 'Standard_LRS'

@description('Queues to create: the jobs queue, its -poison queue and the outcomes queue.')
param queueNames array

@description('Tables to create: job status/history and the doc-index term index.')
param tableNames array

@description('Blob containers to create: documents, analysis, mail and the deployment package container.')
param containerNames array

@description('Days deleted blobs and containers stay recoverable.')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 7

@description('Send the blob/queue/table services\' resource logs (StorageRead/Write/Delete) to this Log Analytics workspace. Empty: none. Queue polling makes StorageRead verbose.')
param diagnosticsWorkspaceId string = ''

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    dnsEndpointType: 'Standard'
    // Flex Consumption without VNet integration reaches storage over its public endpoint;
    // Entra ID + RBAC is the gate. See docs/deploy.md (network isolation) for the VNet variant.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

var storageLogs = [
  {
    category: 'StorageRead'
    enabled: true
  }
  {
    category: 'StorageWrite'
    enabled: true
  }
  {
    category: 'StorageDelete'
    enabled: true
  }
]

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(diagnosticsWorkspaceId)) {
  name: 'storage-logs'
  scope: blobService
  properties: {
    workspaceId: diagnosticsWorkspaceId
    logs: storageLogs
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(diagnosticsWorkspaceId)) {
  name: 'storage-logs'
  scope: queueService
  properties: {
    workspaceId: diagnosticsWorkspaceId
    logs: storageLogs
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(diagnosticsWorkspaceId)) {
  name: 'storage-logs'
  scope: tableService
  properties: {
    workspaceId: diagnosticsWorkspaceId
    logs: storageLogs
  }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output queueServiceId string = queueService.id
