// Optional App Service Authentication (Easy Auth v2) in front of the app: defense in depth only.
// The code still validates every bearer token itself (issuer, audience, tenant, lifetime, scopes
// and roles); nothing is excluded from that. Deployed only when main.bicep's enableEasyAuth is
// true, and then the Entra app registration's client id and tenant are required.

@description('Function app name (existing, same resource group).')
param siteName string

@minLength(36)
@maxLength(36)
@description('Client id (GUID) of the API\'s Entra app registration.')
param clientId string

@minLength(36)
@maxLength(36)
@description('Tenant id (GUID) that issues the tokens Easy Auth accepts (one tenant; see docs/deploy.md).')
param tenantId string

@minLength(1)
@description('Accepted token audiences (the API\'s client id and/or Application ID URI).')
param allowedAudiences array

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      // Anonymous in code too: liveness and the OpenAPI document carry no job data.
      excludedPaths: [
        '/api/health'
        '/api/openapi.json'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: 'https://login.microsoftonline.com/${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: allowedAudiences
        }
      }
    }
  }
}
