// The function app on Flex Consumption (Python 3.11), running as the one user-assigned identity,
// and its app settings: the names are exactly those shared/config/settings.py reads (checked by
// tests/infra/test_app_settings.py). Secrets are Key Vault references, never values.

param name string
param location string
param tags object = {}

@description('Resource id of the Flex Consumption (FC1) plan.')
param planId string

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

param storageAccountName string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string (an ingestion address, not a credential: local auth is off).')
param appInsightsConnectionString string

@description('The Service Bus namespace host name, <name>.servicebus.windows.net.')
param serviceBusNamespace string

param keyVaultName string

@description('DATAVERSE_URL: https://<org>.crm.dynamics.com')
param dataverseUrl string

@description('BIGCOMMERCE_STORES: comma-separated store hashes.')
param bigcommerceStores string

@description('BIGCOMMERCE_<HASH>_WEBHOOK_CHECKS for every store.')
@allowed([
  'header'
  'signature'
  'header,signature'
])
param webhookChecks string = 'header'

param stateTableName string = 'connectorstate'
param dataversePollSchedule string = '*/30 * * * * *'
param reconcileSchedule string = '0 */5 * * * *'

@description('CONNECTOR_ENVIRONMENT, shown by /api/health.')
param environmentName string

@description('The most on-demand instances of each scale group (Flex Consumption applies it per group, not to the app\'s total).')
@minValue(1)
@maxValue(50)
param maximumInstanceCount int

@description('Always-ready instances of the HTTP group (the webhook endpoint); 0 lets it scale to zero.')
@minValue(0)
param alwaysReadyHttpInstances int = 0

@description('BIGCOMMERCE_<HASH>_GO_LIVE: one { store, instant } per store that has one (main.bicep parses bigcommerceGoLive).')
param goLive array = []

// main.bicep puts here what is wrong with bigcommerceGoLive (a store the app does not serve, a
// store named twice, an entry that is not hash=instant): Azure Resource Manager then refuses the
// deployment and shows the text, rather than the app leaving a store without its cut-over.
@description('Must be empty: what is wrong with bigcommerceGoLive (BIGCOMMERCE_GO_LIVE).')
@allowed([
  ''
])
#disable-next-line no-unused-params
param goLiveProblems string = ''

@description('App settings merged last: setting name to string value; a name the template sets is overridden.')
param extraAppSettings object = {}

var stores = [for s in split(replace(bigcommerceStores, ' ', ''), ','): toLower(s)]

// Every process that can have Dataverse requests in flight at once shares the identity's limit
// of 52 concurrent requests (per web server; api-limits.md): order_events scales out to
// maximumInstanceCount instances, and the change poll and the sweep are timers, one instance
// each. dataverse_events gets messages, and scales out the same way, only when extraAppSettings
// switches DATAVERSE_CHANGE_SOURCE to service_endpoint. Each process keeps to its share even
// before the first x-ms-dop-hint arrives (shared/dataverse/gate.py).
var dataverseChangeSource = contains(extraAppSettings, 'DATAVERSE_CHANGE_SOURCE') ? string(extraAppSettings.DATAVERSE_CHANGE_SOURCE) : 'poll'
var dataverseQueueFunctions = (dataverseChangeSource == 'service_endpoint') ? 2 : 1
var dataverseConcurrencyLimit = 52
var dataverseInstances = (maximumInstanceCount * dataverseQueueFunctions) + 2
var dataverseMaxConcurrency = max(1, min(16, dataverseConcurrencyLimit / dataverseInstances))

var checks = split(webhookChecks, ',')
var storageSuffix = environment().suffixes.storage
var blobEndpoint = 'https://${storageAccountName}.blob.${storageSuffix}'
var webhookUrl = 'https://${name}.azurewebsites.net/api/webhooks/bigcommerce'

// The secret names the operator sets in Key Vault (infra/README.md); a reference without a
// version follows the latest one.
var kvRef = '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName='

var baseSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storageAccountName
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'SERVICEBUS_TRANSPORT'
    value: 'azure'
  }
  {
    name: 'ServiceBusConnection__fullyQualifiedNamespace'
    value: serviceBusNamespace
  }
  {
    name: 'ServiceBusConnection__credential'
    value: 'managedidentity'
  }
  {
    name: 'ServiceBusConnection__clientId'
    value: identityClientId
  }
  {
    name: 'DATAVERSE_URL'
    value: dataverseUrl
  }
  {
    name: 'DATAVERSE_CHANGE_SOURCE'
    value: 'poll'
  }
  {
    name: 'DATAVERSE_INSTANCES'
    value: string(dataverseInstances)
  }
  {
    name: 'DATAVERSE_MAX_CONCURRENCY'
    value: string(dataverseMaxConcurrency)
  }
  {
    name: 'DATAVERSE_POLL_SCHEDULE'
    value: dataversePollSchedule
  }
  {
    name: 'RECONCILE_SCHEDULE'
    value: reconcileSchedule
  }
  {
    name: 'BIGCOMMERCE_STORES'
    value: join(stores, ',')
  }
  {
    name: 'STATE_TRANSPORT'
    value: 'azure'
  }
  {
    name: 'STATE_TABLE_ENDPOINT'
    value: 'https://${storageAccountName}.table.${storageSuffix}'
  }
  {
    name: 'STATE_TABLE_NAME'
    value: stateTableName
  }
  {
    name: 'WEBHOOK_DESTINATION_URL'
    value: webhookUrl
  }
  {
    name: 'WEBHOOK_FUNCTION_KEY'
    value: '${kvRef}webhook-function-key)'
  }
  {
    name: 'CONNECTOR_ENVIRONMENT'
    value: environmentName
  }
]

// Per store: the access token always, and the secret of each webhook check required.
var storeSettingLists = [for store in stores: concat([
  {
    name: 'BIGCOMMERCE_${toUpper(store)}_ACCESS_TOKEN'
    value: '${kvRef}bigcommerce-${store}-access-token)'
  }
  {
    name: 'BIGCOMMERCE_${toUpper(store)}_WEBHOOK_CHECKS'
    value: webhookChecks
  }
], contains(checks, 'header') ? [
  {
    name: 'BIGCOMMERCE_${toUpper(store)}_WEBHOOK_SECRET'
    value: '${kvRef}bigcommerce-${store}-webhook-secret)'
  }
] : [], contains(checks, 'signature') ? [
  {
    name: 'BIGCOMMERCE_${toUpper(store)}_CLIENT_SECRET'
    value: '${kvRef}bigcommerce-${store}-client-secret)'
  }
] : [])]

var goLiveSettings = [for entry in goLive: {
  name: 'BIGCOMMERCE_${toUpper(entry.store)}_GO_LIVE'
  value: entry.instant
}]

var templateSettings = concat(baseSettings, flatten(storeSettingLists), goLiveSettings)

// The operator's own settings come last and win: a template setting they name is left out
// (`contains` compares an object's keys case-insensitively).
var extraSettings = [for setting in items(extraAppSettings): {
  name: setting.key
  value: string(setting.value)
}]
var appSettings = concat(filter(templateSettings, setting => !contains(extraAppSettings, setting.name)), extraSettings)

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
    serverFarmId: planId
    httpsOnly: true
    clientAffinityEnabled: false
    // BigCommerce delivers webhooks from the internet; requests are authenticated by the
    // function key and the store's webhook secret (shared/webhooks/authentication.py).
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
        alwaysReady: (alwaysReadyHttpInstances > 0) ? [
          {
            name: 'http'
            instanceCount: alwaysReadyHttpInstances
          }
        ] : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No publishing with user names and passwords: azd deploys with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output resourceId string = site.id
output defaultHostName string = site.properties.defaultHostName
output webhookUrl string = 'https://${site.properties.defaultHostName}/api/webhooks/bigcommerce'
