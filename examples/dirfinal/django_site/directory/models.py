from django.conf import settings
from django.db import models


class Entry(models.Model):
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=40)
    email = models.EmailField(null=True, blank=True)
    photo = models.CharField(max_length=255, null=True, blank=True)
    approved = models.BooleanField(default=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()


class Family(models.Model):
    name = models.CharField(max_length=120)


class FamilyMember(models.Model):
    family = models.ForeignKey(Family, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    relation = models.CharField(max_length=40)


class Score(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    points = models.IntegerField()
    reason = models.CharField(max_length=120, null=True, blank=True)
    created_at = models.DateTimeField()
