<#assign today = .now>
<#assign nowTime = today?long?replace(",","")?number>
<#assign lastSeen = guest.lastSeen?long?replace(",","")?number>
<#assign diffInMinutes2 = ((nowTime - lastSeen)/60000)?round>
<#assign lastSeenDays= ((diffInMinutes2/60)/24)?floor>
<#assign loggedIn24hours = "False">
<#assign nowDate = today?string('yyyy-MM-dd HH:mm:ss')>
<#-- GUEST SESSION DATA -->
<#assign loggedIn24hours = "False">
<#list guest.sessions as sessions>
<#list sessions.interactions as events>
<#if events.type == "IDENTITY">
<#assign identified = "True">
<#assign identityEventDate = events.date?long?replace(",","")?number>
<#assign diffInMinutes2 = ((nowTime - identityEventDate)/60000)?round>
<#if diffInMinutes2 < 1800>
<#assign loggedIn24hours = "True">
</#if>
</#if>
</#list>
</#list>