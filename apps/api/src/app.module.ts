import type { AppConfig } from '@app/config';
import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, DiscoveryModule } from '@nestjs/core';
import { AdminBootstrap } from './admin/admin-bootstrap.js';
import { AdminController } from './admin/admin.controller.js';
import { UsageMeter } from './admin/usage-meter.js';
import { AdminApiKeysController, ApiKeysController } from './api-keys/api-keys.controller.js';
import { ApiKeysService } from './api-keys/api-keys.service.js';
import { AuthModule } from './auth/auth.module.js';
import { DatasetsController } from './datasets/datasets.controller.js';
import { DatasetsService } from './datasets/datasets.service.js';
import { UploadSlots } from './datasets/upload-slots.js';
import { DocsController } from './docs/docs.controller.js';
import { EmbeddingsController, FoundationModelsController } from './foundation/foundation.controller.js';
import { FoundationService } from './foundation/foundation.service.js';
import { FoundationTransport } from './foundation/foundation-transport.js';
import { OpenApiBuilder } from './docs/openapi.js';
import { HealthController } from './health/health.controller.js';
import { ApiExceptionFilter } from './http/errors.js';
import { IdempotencyInterceptor } from './http/idempotency.interceptor.js';
import { IdempotencyQuota } from './http/idempotency-quota.js';
import { InfraModule } from './infra/infra.module.js';
import { AdmissionBatcher } from './jobs/admission.js';
import { JobTargetsLoader } from './jobs/job-targets.js';
import { JobWatcher } from './jobs/job-watcher.js';
import { FilesController } from './files/files.controller.js';
import { FilesService } from './files/files.service.js';
import { JobsController } from './jobs/jobs.controller.js';
import { JobScheduling } from './jobs/job-scheduling.js';
import { JobsService } from './jobs/jobs.service.js';
import { WebhooksController } from './webhooks/webhooks.controller.js';
import { OperationsController } from './admin/operations.controller.js';
import { DashboardController } from './dashboard/dashboard.controller.js';
import { OperationsService } from './admin/operations.service.js';
import { WebhooksService } from './webhooks/webhooks.service.js';
import { PredictController } from './jobs/predict.controller.js';
import { PredictTransport } from './jobs/predict-transport.js';
import { PredictService } from './jobs/predict.service.js';
import { ServingCatalog } from './jobs/serving-catalog.js';
import { MeController } from './me/me.controller.js';
import { ModelsController } from './models/models.controller.js';
import { LoadCheckClient } from './models/load-check.js';
import { ModelsService } from './models/models.service.js';
import { TenantsController } from './tenants/tenants.controller.js';
import { TenantsService } from './tenants/tenants.service.js';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [InfraModule.forRoot(config), AuthModule, DiscoveryModule],
      controllers: [
        HealthController,
        DocsController,
        MeController,
        ApiKeysController,
        AdminApiKeysController,
        TenantsController,
        AdminController,
        DatasetsController,
        ModelsController,
        JobsController,
        FilesController,
        PredictController,
        WebhooksController,
        OperationsController,
        DashboardController,
        FoundationModelsController,
        EmbeddingsController,
      ],
      providers: [
        IdempotencyInterceptor,
        IdempotencyQuota,
        { provide: APP_FILTER, useClass: ApiExceptionFilter },
        ApiKeysService,
        TenantsService,
        DatasetsService,
        UploadSlots,
        ModelsService,
        LoadCheckClient,
        AdmissionBatcher,
        JobTargetsLoader,
        JobScheduling,
        JobsService,
        FilesService,
        WebhooksService,
        OperationsService,
        JobWatcher,
        ServingCatalog,
        PredictTransport,
        PredictService,
        FoundationTransport,
        FoundationService,
        UsageMeter,
        AdminBootstrap,
        OpenApiBuilder,
      ],
    };
  }
}
