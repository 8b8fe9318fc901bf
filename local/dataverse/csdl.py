"""An outline of the `$metadata` CSDL document: entity types with their keys, structural and
navigation properties, and entity sets annotated with `Org.OData.Capabilities.V1.ChangeTracking`
(web-api-service-documents). Enough for tools that discover entity set and property names.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from local.dataverse.catalog import Entity
from local.dataverse.messages import ApiResponse
from local.dataverse.values import EDM_TYPES


def document(catalog: dict[str, Entity]) -> ApiResponse:
    types: list[str] = []
    sets: list[str] = []
    for entity in catalog.values():
        lines = [
            f"<EntityType Name={quoteattr(entity.logical_name)}>",
            f"<Key><PropertyRef Name={quoteattr(entity.primary_id)}/></Key>",
        ]
        for attribute in entity.attributes.values():
            name = (
                attribute.lookup_property if attribute.kind == "lookup" else attribute.logical_name
            )
            lines.append(
                f"<Property Name={quoteattr(name)} Type={quoteattr(EDM_TYPES[attribute.kind])}/>"
            )
            for target, navigation in attribute.navigation.items():
                lines.append(
                    f"<NavigationProperty Name={quoteattr(navigation)} "
                    f"Type={quoteattr('mscrm.' + target)}/>"
                )
        for collection in entity.collections.values():
            lines.append(
                f"<NavigationProperty Name={quoteattr(collection.name)} "
                f"Type={quoteattr(f'Collection(mscrm.{collection.child})')}/>"
            )
        lines.append("</EntityType>")
        types.append("".join(lines))
        sets.append(
            f"<EntitySet Name={quoteattr(entity.entity_set)} "
            f"EntityType={quoteattr('mscrm.' + entity.logical_name)}>"
            '<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record>'
            '<PropertyValue Property="Supported" Bool="true"/></Record></Annotation></EntitySet>'
        )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
        "<edmx:DataServices>"
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" '
        'xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        + "".join(types)
        + '<EntityContainer Name="System">'
        + "".join(sets)
        + "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    )
    return ApiResponse(
        200, [("Content-Type", "application/xml"), ("OData-Version", "4.0")], xml.encode()
    )
