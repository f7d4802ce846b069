"""A contact's attributes must be an object of storable JSON and its time zone a known one: validators only, no
SQL (values stored before are left as they are, and an edit checks only the fields it writes)."""

import config.validators
import contacts.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0005_channel_suppressions_as_channels'),
    ]

    operations = [
        migrations.AlterField(
            model_name='contact',
            name='attributes',
            field=models.JSONField(blank=True, db_default={}, default=dict, help_text='Free fields, usable in texts as {{name}}.', validators=[contacts.validators.validate_attributes, config.validators.validate_storable_json]),
        ),
        migrations.AlterField(
            model_name='contact',
            name='timezone',
            field=models.CharField(blank=True, db_default='', default='', help_text='e.g. Asia/Kolkata', max_length=64, validators=[contacts.validators.validate_time_zone]),
        ),
    ]
