"""An import is named "import" (it holds opt-outs and DLT templates as well as contacts; the admin said "Contact
imports"), its opt-out kind "opt-outs", and its mapping's help says what the stored mapping is, for any kind.

Django names a model's permissions only when it creates them: those of an existing database are renamed as well
("Can view contact import" becomes "Can view import"), so that the permission lists say what the model says. A new
database has none yet here; they are created with the new names after the migration."""

from django.db import migrations, models

ACTIONS = ("add", "change", "delete", "view")


def rename_permissions(old: str, new: str):
    def rename(apps, schema_editor):
        Permission = apps.get_model("auth", "Permission")
        for action in ACTIONS:
            Permission.objects.filter(
                content_type__app_label="contacts", codename=f"{action}_contactimport", name=f"Can {action} {old}"
            ).update(name=f"Can {action} {new}")

    return rename


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("contacts", "0013_unique_messages_read_one_way"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="contactimport",
            options={"ordering": ["-id"], "verbose_name": "import", "verbose_name_plural": "imports"},
        ),
        migrations.AlterField(
            model_name="contactimport",
            name="kind",
            field=models.CharField(
                choices=[("contacts", "contacts"), ("unsubscribers", "opt-outs"), ("dlt_templates", "DLT templates")],
                default="contacts",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="contactimport",
            name="mapping",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="How the file's columns were read: column → field, \"\" for one left out.",
            ),
        ),
        migrations.RunPython(
            rename_permissions("contact import", "import"), rename_permissions("import", "contact import"), elidable=True
        ),
    ]
