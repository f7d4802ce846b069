"""An unsubscriber is named "opt-out" in the admin, as the imports and the pages call it: the sidebar said
"Unsubscribers" next to "Removed opt-outs". Its table, permission codenames and API paths are as they were.

Django names a model's permissions only when it creates them: those of an existing database are renamed as well
("Can view unsubscriber" becomes "Can view opt-out"), so that the permission lists say what the model says. A new
database has none yet here; they are created with the new names after the migration."""

from django.db import migrations

ACTIONS = ("add", "change", "delete", "view")


def rename_permissions(old: str, new: str):
    def rename(apps, schema_editor):
        Permission = apps.get_model("auth", "Permission")
        for action in ACTIONS:
            Permission.objects.filter(
                content_type__app_label="contacts", codename=f"{action}_unsubscriber", name=f"Can {action} {old}"
            ).update(name=f"Can {action} {new}")

    return rename


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("contacts", "0014_import_named_for_what_it_holds"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="unsubscriber",
            options={"ordering": ["-id"], "verbose_name": "opt-out", "verbose_name_plural": "opt-outs"},
        ),
        migrations.RunPython(
            rename_permissions("unsubscriber", "opt-out"), rename_permissions("opt-out", "unsubscriber"), elidable=True
        ),
    ]
