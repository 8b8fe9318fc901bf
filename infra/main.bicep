// The connector's Azure environment, for `azd up` (see infra/README.md): a resource group with
// the Flex Consumption function app, its one user-assigned identity, storage, Service Bus, Key
// Vault, Application Insights on Log Analytics, and the alerts. No keys or connection strings:
// every connection is Entra ID with that identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name (AZURE_ENV_NAME); names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Azure region of every resource (AZURE_LOCATION); it must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('dev: scale to zero, 4 instances per scale group, short retention, vault purgeable. prod: one always-ready webhook instance, 10 instances per scale group, zone-redundant storage, 90-day logs, vault purge protection.')
@allowed([
  'dev'
  'prod'
])
param environmentType string = 'dev'

@description('Where alerts are e-mailed (ALERT_EMAIL).')
param alertEmail string

@description('The Dataverse environment URL, https://<org>.crm.dynamics.com (DATAVERSE_URL).')
param dataverseUrl string

@minLength(1)
@description('Comma-separated BigCommerce store hashes (BIGCOMMERCE_STORES).')
param bigcommerceStores string

@description('Webhook checks required of every store (BIGCOMMERCE_WEBHOOK_CHECKS): which secrets the operator sets.')
@allowed([
  'header'
  'signature'
  'header,signature'
])
param webhookChecks string = 'header'

@description('Principal id of the deploying user or service principal (AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer so it can set the secrets. Empty: none.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Six-field NCRONTAB schedule of the Dataverse change poll (DATAVERSE_POLL_SCHEDULE).')
param dataversePollSchedule string = '*/30 * * * * *'

@description('Six-field NCRONTAB schedule of the reconciliation sweep (RECONCILE_SCHEDULE).')
param reconcileSchedule string = '0 */5 * * * *'

@description('Alert when a change stays out of sync longer than this many seconds.')
@minValue(300)
param oldestUnsyncedAlertSeconds int = 3600

// Flex Consumption applies maximumInstanceCount to each scale group: the HTTP group (the webhook
// endpoint) and each Service Bus or timer function on its own instances. The order_events
// function's instances, plus the two timers, share the identity's 52 concurrent Dataverse
// requests, so the template derives DATAVERSE_INSTANCES from it (infra/README.md, *Scale*).
@description('The most on-demand instances of each Flex Consumption scale group (CONNECTOR_MAXIMUM_INSTANCE_COUNT). Default: 4 (dev), 10 (prod). At most 50, so that each process that calls Dataverse keeps at least one of the identity\'s 52 concurrent requests.')
@minValue(1)
@maxValue(50)
param maximumInstanceCount int = (environmentType == 'prod') ? 10 : 4

@description('Each store\'s BIGCOMMERCE_<HASH>_GO_LIVE (BIGCOMMERCE_GO_LIVE): comma-separated <store hash>=<ISO 8601 instant>, e.g. abc123=2026-11-01T06:00:00Z,def456=2026-11-08T06:00:00Z. Every hash must be in bigcommerceStores. Empty: no store has one.')
param bigcommerceGoLive string = ''

@description('App settings merged last, over the template\'s own (CONNECTOR_EXTRA_APP_SETTINGS): a JSON object of setting names to string values, e.g. {"LOG_LEVEL":"DEBUG"}. Never a secret value: use a Key Vault reference.')
param extraAppSettings object = {}

var isProd = environmentType == 'prod'
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  'connector-environment-type': environmentType
}
var abbrs = {
  resourceGroup: 'rg-'
  identity: 'id-'
  plan: 'plan-'
  functionApp: 'func-'
  storage: 'st'
  serviceBus: 'sb-'
  keyVault: 'kv-'
  logAnalytics: 'log-'
  appInsights: 'appi-'
  actionGroup: 'ag-'
  alert: 'alert-'
}
var functionAppName = '${abbrs.functionApp}${resourceToken}'
var storageAccountName = '${abbrs.storage}${resourceToken}'
var keyVaultName = '${abbrs.keyVault}${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var stateTableName = 'connectorstate'

// BIGCOMMERCE_<HASH>_GO_LIVE from `hash=instant,hash=instant`. An entry the app could not use (a
// store it does not serve, a store named twice, no `=`) is a problem the function app module
// refuses, naming the entry: ignoring it would leave the store without its cut-over.
var stores = [for s in split(replace(bigcommerceStores, ' ', ''), ','): toLower(s)]
var goLiveEntries = [for entry in (empty(trim(bigcommerceGoLive)) ? [] : split(bigcommerceGoLive, ',')): split(entry, '=')]
var goLiveStores = [for entry in goLiveEntries: toLower(trim(entry[0]))]
var goLiveErrors = [for (entry, i) in goLiveEntries: (length(entry) != 2) ? 'is not <store hash>=<ISO 8601 instant>' : (empty(trim(entry[1])) ? 'has no instant' : ((!contains(stores, goLiveStores[i])) ? 'names a store that is not in bigcommerceStores (BIGCOMMERCE_STORES)' : ((indexOf(goLiveStores, goLiveStores[i]) != i) ? 'names a store a second time' : '')))]
var goLiveProblems = [for (entry, i) in goLiveEntries: empty(goLiveErrors[i]) ? '' : 'bigcommerceGoLive (BIGCOMMERCE_GO_LIVE): "${trim(join(entry, '='))}" ${goLiveErrors[i]}']
var goLive = [for (entry, i) in goLiveEntries: {
  store: goLiveStores[i]
  instant: (length(entry) == 2) ? trim(entry[1]) : ''
}]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

// The one identity of the app: storage, Service Bus, Key Vault references, Application
// Insights ingestion and Dataverse (as an application user) all use it.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.identity}${resourceToken}'
    location: location
    tags: tags
    enableTelemetry: false
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.7.0' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: '${abbrs.logAnalytics}${resourceToken}'
    location: location
    tags: tags
    dataRetention: isProd ? 90 : 30
    enableTelemetry: false
  }
}

module appInsights 'br/public:avm/res/insights/component:0.4.1' = {
  name: 'appInsights'
  scope: rg
  params: {
    name: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
    enableTelemetry: false
  }
}

module storage 'br/public:avm/res/storage/storage-account:0.14.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    skuName: isProd ? 'Standard_ZRS' : 'Standard_LRS'
    kind: 'StorageV2'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    dnsEndpointType: 'Standard'
    // Flex Consumption without virtual network integration reaches storage over its public
    // endpoint, with Entra ID only (shared keys are off). infra/README.md: private endpoints.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentContainerName
          publicAccess: 'None'
        }
      ]
    }
    tableServices: {
      tables: [
        {
          name: stateTableName
        }
      ]
    }
    enableTelemetry: false
  }
}

// RBAC mode; holds the BigCommerce secrets and the webhook function key, which the operator
// sets after `azd provision` (infra/README.md). Reachable publicly (with Entra ID) because Key
// Vault references from an app without virtual network integration need it.
module keyVault 'br/public:avm/res/key-vault/vault:0.13.3' = {
  name: 'keyVault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    sku: 'standard'
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: isProd ? 90 : 7
    enablePurgeProtection: isProd
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    enableTelemetry: false
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'plan'
  scope: rg
  params: {
    name: '${abbrs.plan}${resourceToken}'
    location: location
    tags: tags
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
    enableTelemetry: false
  }
}

module serviceBus './modules/servicebus.bicep' = {
  name: 'serviceBus'
  scope: rg
  params: {
    name: '${abbrs.serviceBus}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module roles './modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: appInsights.outputs.name
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module functionApp './modules/function-app.bicep' = {
  name: 'functionApp'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    planId: plan.outputs.resourceId
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: appInsights.outputs.connectionString
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    keyVaultName: keyVault.outputs.name
    dataverseUrl: dataverseUrl
    bigcommerceStores: bigcommerceStores
    webhookChecks: webhookChecks
    stateTableName: stateTableName
    dataversePollSchedule: dataversePollSchedule
    reconcileSchedule: reconcileSchedule
    environmentName: environmentName
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyHttpInstances: isProd ? 1 : 0
    goLive: goLive
    goLiveProblems: join(filter(goLiveProblems, problem => !empty(problem)), '; ')
    extraAppSettings: extraAppSettings
  }
  // The host reads storage, Service Bus and Key Vault as soon as it starts.
  dependsOn: [
    roles
    serviceBus
  ]
}

module actionGroup 'br/public:avm/res/insights/action-group:0.8.0' = {
  name: 'actionGroup'
  scope: rg
  params: {
    name: '${abbrs.actionGroup}${resourceToken}'
    location: 'global'
    tags: tags
    groupShortName: take('conn${resourceToken}', 12)
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
    enableTelemetry: false
  }
}

module alerts './modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: '${abbrs.alert}${resourceToken}'
    location: location
    tags: tags
    actionGroupId: actionGroup.outputs.resourceId
    serviceBusNamespaceId: serviceBus.outputs.resourceId
    appInsightsId: appInsights.outputs.resourceId
    oldestUnsyncedSeconds: oldestUnsyncedAlertSeconds
  }
}

// azd writes these into the environment (.azure/<env>/.env).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_URL string = functionApp.outputs.webhookUrl
output SERVICEBUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output STATE_TABLE_ENDPOINT string = 'https://${storage.outputs.name}.table.${environment().suffixes.storage}'
output APPLICATIONINSIGHTS_NAME string = appInsights.outputs.name
