<#assign validmessages = getDecisionModelResultNode("validMessages").outputs[0].validmessages> 
[ 
<#list validmessages?values as v> 
  { 
    "id": "${v.id}", 
    "title": "${v.title}", 
    "type": "${v.type}", 
    "priority": ${v.priority}, 
    <#if v.buttonText?? && v.buttonText?has_content> 
    "buttonText": "${v.buttonText}", 
    </#if>
    <#if v.additionalContent?? && v.additionalContent?has_content> 
    "additionalContent": "${v.additionalContent}", 
    </#if>
    <#if v.deeplink?? && v.deeplink?has_content> 
    "deeplink": "${v.deeplink}", 
    </#if>
  }<#sep>, </#sep> 
</#list>