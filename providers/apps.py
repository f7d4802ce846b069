from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers"

    def ready(self):
        from contacts.imports import register_importer
        from contacts.models import ContactImport
        from providers.dlt_import import DltTemplateImporter

        register_importer(ContactImport.Kind.DLT_TEMPLATES, DltTemplateImporter)
