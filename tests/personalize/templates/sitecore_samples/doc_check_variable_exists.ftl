<#if guest.orders[0]??>
	<#-- get last order -->
</#if>