from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self):
        from campaigns.selectors.composer import campaigns_selecting_by_segments, campaigns_selecting_by_tags
        from contacts import services as contacts_services

        contacts_services.TAG_HOLDERS.append(campaigns_selecting_by_tags)
        contacts_services.SEGMENT_HOLDERS.append(campaigns_selecting_by_segments)
