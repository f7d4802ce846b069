from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers"

    def ready(self):
        from contacts.imports import register_importer
        from contacts.models import ContactImport
        from contacts.selectors import register_sender_named
        from providers.dlt_import import DltTemplateImporter
        from providers.services import sender_name_exists, sender_names

        register_importer(ContactImport.Kind.DLT_TEMPLATES, DltTemplateImporter)
        register_sender_named(sender_name_exists, sender_names)
